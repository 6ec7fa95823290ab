import State

/// One SysV shared memory segment (ipc/shm.c's shmid_kernel): its key and
/// ID, its permissions, and its bytes, which are a file on the internal
/// tmpfs as Linux's are, so shmat is a shared mapping of that file and a
/// checkpoint saves the pages with the rest of memory. Guarded by its
/// registry's lock.
final class ShmSegment: Savable, @unchecked Sendable {
    static let savedTypeName = "ipc.ShmSegment"
    static let savedAs: [String: String] = [
        "attachedFile": "file", "destroyedFile": "file",
        "uid": "owners", "gid": "owners", "creatorUID": "owners", "creatorGID": "owners",
        "attachTime": "times", "detachTime": "times", "changeTime": "times",
        "creatorPID": "pids", "lastPID": "pids",
    ]

    /// IPC_PRIVATE once removed (Linux's SHM_DEST segments lose their key).
    var key: Int32 = 0
    var id: Int32 = 0
    /// Bytes asked for (shm_segsz); the file is as long.
    var size: UInt64 = 0
    var uid: UInt32 = 0, gid: UInt32 = 0, creatorUID: UInt32 = 0, creatorGID: UInt32 = 0
    /// The permission bits, with SHM_DEST and SHM_LOCKED.
    var mode: UInt32 = 0
    var attachTime: Int64 = 0, detachTime: Int64 = 0, changeTime: Int64 = 0
    var creatorPID: Int32 = 0, lastPID: Int32 = 0
    /// The file while the segment has an ID anyone may attach. Once
    /// removed, only its attachments hold it (`destroyedFile`): the last
    /// detach or exit frees the bytes, as Linux's last shm_close.
    private var attachedFile: FileDescription?
    private weak var destroyedFile: FileDescription?

    init() {}

    init(key: Int32, id: Int32, size: UInt64, file: FileDescription, credentials: Credentials, mode: UInt32,
         creatorPID: Int32, now: Int64) {
        self.key = key
        self.id = id
        self.size = size
        attachedFile = file
        (uid, gid) = (credentials.effectiveUID, credentials.effectiveGID)
        (creatorUID, creatorGID) = (uid, gid)
        self.mode = mode & 0o777
        self.creatorPID = creatorPID
        changeTime = now
    }

    var file: FileDescription? { attachedFile ?? destroyedFile }
    var isDestroyed: Bool { mode & LinuxIPC.SHM_DEST != 0 }

    /// IPC_RMID: the key goes, and the registry's hold on the bytes.
    func destroy() {
        mode |= LinuxIPC.SHM_DEST
        key = LinuxIPC.IPC_PRIVATE
        destroyedFile = attachedFile
        attachedFile = nil
    }

    /// ipcperms: the owner's or creator's bits for its effective UID, the
    /// group's for a member of its group or the creator's, else the others';
    /// CAP_IPC_OWNER passes. `requested` is in the owner's position (0o400, 0o200).
    func permits(_ credentials: Credentials, requested: UInt32) -> Bool {
        let wanted = (requested >> 6 | requested >> 3 | requested) & 0o7
        var granted = mode
        if credentials.effectiveUID == uid || credentials.effectiveUID == creatorUID {
            granted >>= 6
        } else if credentials.isGroupMember(gid) || credentials.isGroupMember(creatorGID) {
            granted >>= 3
        }
        return wanted & ~granted & 0o7 == 0 || credentials.hasCapability(LinuxCapability.CAP_IPC_OWNER)
    }

    /// IPC_SET, IPC_RMID: the owner or creator, or CAP_SYS_ADMIN.
    func mayChange(_ credentials: Credentials) -> Bool {
        credentials.effectiveUID == uid || credentials.effectiveUID == creatorUID
            || credentials.hasCapability(LinuxCapability.CAP_SYS_ADMIN)
    }

    /// struct shmid64_ds, with the attachment count the caller counted.
    func shmid(attachments: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: LinuxIPC.shmidSize)
        out.put(key, at: 0)
        out.put(uid, at: 4)
        out.put(gid, at: 8)
        out.put(creatorUID, at: 12)
        out.put(creatorGID, at: 16)
        out.put(mode, at: 20)
        out.put(UInt16(truncatingIfNeeded: id / LinuxIPC.SEQ_MULTIPLIER), at: 24)
        out.put(size, at: 48)
        out.put(attachTime, at: 56)
        out.put(detachTime, at: 64)
        out.put(changeTime, at: 72)
        out.put(creatorPID, at: 80)
        out.put(lastPID, at: 84)
        out.put(UInt64(attachments), at: 88)
        return out
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("key", key)
        try sink.save("id", id)
        try sink.save("size", size)
        try sink.save("owners", [uid, gid, creatorUID, creatorGID])
        try sink.save("mode", mode)
        try sink.save("times", [attachTime, detachTime, changeTime])
        try sink.save("pids", [creatorPID, lastPID])
        try sink.save("file", file)
    }

    func load(from source: inout LoadSource) throws {
        key = try source.load("key")
        id = try source.load("id")
        size = try source.load("size")
        let owners: [UInt32] = try source.load("owners")
        let times: [Int64] = try source.load("times")
        let pids: [Int32] = try source.load("pids")
        guard owners.count == 4, times.count == 3, pids.count == 2 else {
            throw StateError.invalidValue("\(owners.count) owners, \(times.count) times and \(pids.count) PIDs, expected 4, 3 and 2",
                                          field: "owners")
        }
        (uid, gid, creatorUID, creatorGID) = (owners[0], owners[1], owners[2], owners[3])
        (attachTime, detachTime, changeTime) = (times[0], times[1], times[2])
        (creatorPID, lastPID) = (pids[0], pids[1])
        mode = try source.load("mode")
        try ImageValidation.require(mode & ~(0o777 | LinuxIPC.SHM_DEST | LinuxIPC.SHM_LOCKED) == 0, field: "mode",
                                    "\(mode) has bits a segment's mode does not have")
        try ImageValidation.require(id >= 0 && size >= LinuxIPC.SHMMIN && size <= LinuxIPC.SHMMAX, field: "size",
                                    "segment \(id) of \(size) bytes")
        let file: FileDescription? = try source.load("file")
        if isDestroyed {
            destroyedFile = file
        } else {
            guard let file else { throw StateError.invalidValue("segment \(id) has no file", field: "file") }
            attachedFile = file
        }
    }
}

extension Credentials {
    /// in_group_p: the filesystem GID or a supplementary group.
    func isGroupMember(_ group: UInt32) -> Bool {
        filesystemGID == group || supplementaryGIDs.contains(group)
    }
}

import State

/// One SysV shared memory segment (ipc/shm.c's shmid_kernel): its
/// permissions and its bytes, which are a file on the internal tmpfs as
/// Linux's are, so shmat is a shared mapping of that file and a checkpoint
/// saves the pages with the rest of memory. Guarded by its registry's lock.
final class ShmSegment: IPCObject, Savable, @unchecked Sendable {
    static let savedTypeName = "ipc.ShmSegment"
    static let savedAs: [String: String] = [
        "attachedFile": "file", "destroyedFile": "file",
        "attachTime": "times", "detachTime": "times", "changeTime": "times",
        "creatorPID": "pids", "lastPID": "pids",
    ]

    var permissions = IPCPermissions()
    /// Bytes asked for (shm_segsz); the file is as long.
    var size: UInt64 = 0
    var attachTime: Int64 = 0, detachTime: Int64 = 0, changeTime: Int64 = 0
    var creatorPID: Int32 = 0, lastPID: Int32 = 0
    /// The file while the segment has an ID anyone may attach. Once
    /// removed, only its attachments hold it (`destroyedFile`): the last
    /// detach or exit frees the bytes, as Linux's last shm_close.
    private var attachedFile: FileDescription?
    private weak var destroyedFile: FileDescription?

    init() {}

    init(permissions: IPCPermissions, size: UInt64, file: FileDescription, creatorPID: Int32, now: Int64) {
        self.permissions = permissions
        self.size = size
        attachedFile = file
        self.creatorPID = creatorPID
        changeTime = now
    }

    var file: FileDescription? { attachedFile ?? destroyedFile }
    var isLive: Bool { file != nil }
    var isDestroyed: Bool { permissions.mode & LinuxIPC.SHM_DEST != 0 }

    /// IPC_RMID: the key goes, and the registry's hold on the bytes.
    func destroy() {
        permissions.mode |= LinuxIPC.SHM_DEST
        permissions.key = LinuxIPC.IPC_PRIVATE
        destroyedFile = attachedFile
        attachedFile = nil
    }

    /// struct shmid64_ds, with the attachment count the caller counted.
    func shmid(attachments: Int) -> [UInt8] {
        var out = permissions.bytes + [UInt8](repeating: 0, count: LinuxIPC.shmidSize - 48)
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
        try sink.save("permissions", permissions)
        try sink.save("size", size)
        try sink.save("times", [attachTime, detachTime, changeTime])
        try sink.save("pids", [creatorPID, lastPID])
        try sink.save("file", file)
    }

    func load(from source: inout LoadSource) throws {
        permissions = try source.load("permissions")
        size = try source.load("size")
        let times: [Int64] = try source.load("times")
        let pids: [Int32] = try source.load("pids")
        guard times.count == 3, pids.count == 2 else {
            throw StateError.invalidValue("\(times.count) times and \(pids.count) PIDs, expected 3 and 2", field: "times")
        }
        (attachTime, detachTime, changeTime) = (times[0], times[1], times[2])
        (creatorPID, lastPID) = (pids[0], pids[1])
        try ImageValidation.require(size >= LinuxIPC.SHMMIN && size <= LinuxIPC.SHMMAX, field: "size",
                                    "segment \(permissions.id) of \(size) bytes")
        let file: FileDescription? = try source.load("file")
        if isDestroyed {
            destroyedFile = file
        } else {
            // A segment not removed (no SHM_DEST in its mode) has its file.
            guard let file else {
                throw StateError.invalidValue("segment \(permissions.id) is not removed but has no file", field: "permissions")
            }
            attachedFile = file
        }
    }
}

import State

/// What every SysV IPC object has (ipc/util.c's kern_ipc_perm): its key and
/// ID, owner and creator, and mode; who may use it and who may change it.
struct IPCPermissions: SavableStruct, Equatable, Sendable {
    static let savedTypeName = "ipc.Permissions"
    static let savedAs: [String: String] = ["uid": "owners", "gid": "owners", "creatorUID": "owners", "creatorGID": "owners"]

    /// IPC_PRIVATE once the object is removed.
    var key: Int32 = LinuxIPC.IPC_PRIVATE
    var id: Int32 = 0
    var uid: UInt32 = 0, gid: UInt32 = 0, creatorUID: UInt32 = 0, creatorGID: UInt32 = 0
    /// The permission bits, and an object's own flags above them (SHM_DEST, SHM_LOCKED).
    var mode: UInt32 = 0

    init() {}

    /// A new object's: owned and created by the caller's effective IDs.
    init(key: Int32, id: Int32, credentials: Credentials, mode: UInt32) {
        self.key = key
        self.id = id
        (uid, gid) = (credentials.effectiveUID, credentials.effectiveGID)
        (creatorUID, creatorGID) = (uid, gid)
        self.mode = mode & 0o777
    }

    /// The slot the ID names.
    var slot: Int { Int(id % LinuxIPC.SEQ_MULTIPLIER) }

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

    /// IPC_SET's change, from the caller's struct ipc64_perm: owner, group, permission bits.
    mutating func set(from raw: [UInt8]) {
        uid = raw.littleEndian(UInt32.self, at: 4)
        gid = raw.littleEndian(UInt32.self, at: 8)
        mode = mode & ~0o777 | raw.littleEndian(UInt32.self, at: 20) & 0o777
    }

    /// struct ipc64_perm (48 bytes), at the start of every *id64_ds.
    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 48)
        out.put(key, at: 0)
        out.put(uid, at: 4)
        out.put(gid, at: 8)
        out.put(creatorUID, at: 12)
        out.put(creatorGID, at: 16)
        out.put(mode, at: 20)
        out.put(UInt16(truncatingIfNeeded: id / LinuxIPC.SEQ_MULTIPLIER), at: 24)
        return out
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("key", key)
        try sink.save("id", id)
        try sink.save("owners", [uid, gid, creatorUID, creatorGID])
        try sink.save("mode", mode)
    }

    init(from source: inout LoadSource) throws {
        key = try source.load("key")
        id = try source.load("id")
        let owners: [UInt32] = try source.load("owners")
        try ImageValidation.require(owners.count == 4, field: "owners", "\(owners.count) owners, expected 4")
        (uid, gid, creatorUID, creatorGID) = (owners[0], owners[1], owners[2], owners[3])
        mode = try source.load("mode")
        try ImageValidation.require(id >= 0, field: "id", "negative ID \(id)")
        try ImageValidation.require(mode & ~0o3777 == 0, field: "mode", "\(mode) has bits no IPC mode has")
    }
}

/// The wall-clock seconds SysV IPC objects record (shm_atime, sem_otime, msg_stime, ...).
enum IPCTime {
    static func now() -> Int64 { FileTime.now().seconds }
}

extension Credentials {
    /// in_group_p: the filesystem GID or a supplementary group.
    func isGroupMember(_ group: UInt32) -> Bool {
        filesystemGID == group || supplementaryGIDs.contains(group)
    }
}

/// An IPC object a registry keeps in its slots.
protocol IPCObject: Savable {
    var permissions: IPCPermissions { get }
    /// Whether it still counts: a removed shared memory segment stays
    /// while attached, then its slot is free.
    var isLive: Bool { get }
}

/// A registry's slots and ID sequence (ipc/util.c's ipc_ids): IDs are the
/// slot plus SEQ_MULTIPLIER times a count of creations, so a stale ID does
/// not name a new object in its slot. Guarded by its registry's lock.
struct IPCSlots<Object: IPCObject> {
    var objects: [Object?] = []
    var sequence: Int32 = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func object(id: Int32) -> Object? {
        guard id >= 0 else { return nil }
        let slot = Int(id % LinuxIPC.SEQ_MULTIPLIER)
        guard slot < objects.count, let object = objects[slot], object.permissions.id == id, object.isLive else {
            return nil
        }
        return object
    }

    func object(slot: Int) -> Object? {
        guard slot >= 0, slot < objects.count, let object = objects[slot], object.isLive else { return nil }
        return object
    }

    /// The named object `key` has (removed ones have none).
    func object(key: Int32) -> Object? {
        objects.first { $0?.permissions.key == key && $0?.isLive == true } ?? nil
    }

    var live: [Object] { objects.compactMap { $0 }.filter(\.isLive) }

    /// The highest slot in use, or 0 (what IPC_INFO returns).
    var highestSlot: Int32 { Int32(objects.lastIndex { $0?.isLive == true } ?? 0) }

    /// ipcget, run under the registry's lock so no other call finds or
    /// makes the key's object in between: `key`'s object (EEXIST under
    /// IPC_CREAT|IPC_EXCL, then `check`'s refusal, then EACCES without the
    /// permissions the flags ask), or, for IPC_PRIVATE or under IPC_CREAT,
    /// a new one `make` builds for the lowest free slot's next ID (ENOENT
    /// without IPC_CREAT, ENOSPC past `limit` objects).
    mutating func get(key: Int32, flags: Int32, credentials: Credentials,
                      check: (Object) throws(SyscallError) -> Void,
                      make: (Int32) throws(SyscallError) -> Object) throws(SyscallError) -> Object {
        if key != LinuxIPC.IPC_PRIVATE, let existing = object(key: key) {
            if flags & LinuxIPC.IPC_CREAT != 0 && flags & LinuxIPC.IPC_EXCL != 0 { throw .eexist }
            try check(existing)
            guard existing.permissions.permits(credentials, requested: UInt32(bitPattern: flags) & 0o777) else {
                throw .eacces
            }
            return existing
        }
        if key != LinuxIPC.IPC_PRIVATE, flags & LinuxIPC.IPC_CREAT == 0 { throw .enoent }
        let slot = objects.firstIndex { $0 == nil || $0?.isLive == false } ?? objects.count
        guard slot < limit else { throw .enospc }
        let made = try make(sequence * LinuxIPC.SEQ_MULTIPLIER + Int32(slot))
        sequence = sequence >= LinuxIPC.IPCID_SEQ_MAX ? 0 : sequence + 1
        if slot == objects.count { objects.append(made) } else { objects[slot] = made }
        return made
    }

    mutating func remove(_ object: Object) {
        let slot = object.permissions.slot
        if slot < objects.count, objects[slot] === object { objects[slot] = nil }
    }

    /// The live objects in their slots, and the sequence.
    func save(to sink: inout SaveSink) throws {
        try sink.save("slots", objects.map { $0?.isLive == true ? $0 : nil })
        try sink.save("sequence", sequence)
    }

    mutating func load(from source: inout LoadSource) throws {
        objects = try source.load("slots")
        sequence = try source.load("sequence")
    }

    /// Each object in the slot its ID names, the sequence in range.
    func validate() throws {
        try ImageValidation.require(objects.count <= limit && (0...LinuxIPC.IPCID_SEQ_MAX).contains(sequence),
                                    field: "slots", "\(objects.count) slots, sequence \(sequence)")
        for (slot, object) in objects.enumerated() {
            guard let object else { continue }
            try ImageValidation.require(object.permissions.slot == slot, field: "slots",
                                        "object \(object.permissions.id) in slot \(slot)")
        }
    }
}

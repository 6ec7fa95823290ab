/// User and group IDs (kernel/sys.c, kernel/groups.c): get*id, set*id,
/// setfs*id and the supplementary groups. A change makes new credentials
/// for the calling thread only, as Linux's; glibc carries setuid and friends
/// to the other threads itself (SIGSETXID).
extension SyscallTable {
    mutating func registerCredentials() {
        register(102) { task, _ throws(SyscallError) in Int64(task.credentials.realUID) }       // getuid
        register(107) { task, _ throws(SyscallError) in Int64(task.credentials.effectiveUID) }  // geteuid
        register(104) { task, _ throws(SyscallError) in Int64(task.credentials.realGID) }       // getgid
        register(108) { task, _ throws(SyscallError) in Int64(task.credentials.effectiveGID) }  // getegid
        register(118) { task, args throws(SyscallError) in
            try Identity.copyOut(task, task.credentials.userIDs, args)                          // getresuid
        }
        register(120) { task, args throws(SyscallError) in
            try Identity.copyOut(task, task.credentials.groupIDs, args)                         // getresgid
        }
        register(115, Identity.getgroups)
        register(116, Identity.setgroups)
        register(105) { task, args throws(SyscallError) in try Identity.setID(task, .user, args.uint(0)) }   // setuid
        register(106) { task, args throws(SyscallError) in try Identity.setID(task, .group, args.uint(0)) }  // setgid
        register(113) { task, args throws(SyscallError) in                                      // setreuid
            try Identity.setRealAndEffective(task, .user, real: args.uint(0), effective: args.uint(1))
        }
        register(114) { task, args throws(SyscallError) in                                      // setregid
            try Identity.setRealAndEffective(task, .group, real: args.uint(0), effective: args.uint(1))
        }
        register(117) { task, args throws(SyscallError) in                                      // setresuid
            try Identity.setAll(task, .user, args.uint(0), args.uint(1), args.uint(2))
        }
        register(119) { task, args throws(SyscallError) in                                      // setresgid
            try Identity.setAll(task, .group, args.uint(0), args.uint(1), args.uint(2))
        }
        register(122) { task, args throws(SyscallError) in Identity.setFilesystemID(task, .user, args.uint(0)) }
        register(123) { task, args throws(SyscallError) in Identity.setFilesystemID(task, .group, args.uint(0)) }
    }
}

enum Identity {
    /// Which set of IDs a call changes, and the capability that lets it
    /// choose any ID.
    enum Kind {
        case user, group

        var capability: Int { self == .user ? LinuxCapability.CAP_SETUID : LinuxCapability.CAP_SETGID }

        /// Real, effective, saved.
        func ids(_ credentials: Credentials) -> [UInt32] {
            self == .user ? credentials.userIDs : credentials.groupIDs
        }
    }

    /// (uid_t)-1: "leave this one" to setre*id and setres*id, and never an ID.
    static let unchanged = UInt32.max

    /// getresuid/getresgid: three IDs to three pointers.
    static func copyOut(_ task: Task, _ ids: [UInt32], _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        for (index, id) in ids.enumerated() { try task.copyOut(value: id, to: args.pointer(index)) }
        return 0
    }

    static func getgroups(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let size = args.int(0)
        let groups = task.credentials.supplementaryGIDs
        guard size >= 0 else { throw .einval }
        if size == 0 { return Int64(groups.count) }
        guard Int(size) >= groups.count else { throw .einval }
        try task.copyOut(groups.withUnsafeBytes { Array($0) }, to: args.pointer(1))
        return Int64(groups.count)
    }

    /// setgroups(2): CAP_SETGID, then at most NGROUPS_MAX groups, none of them (gid_t)-1.
    static func setgroups(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let old = task.credentials
        guard old.hasCapability(LinuxCapability.CAP_SETGID) else { throw .eperm }
        let size = args.int(0)
        guard size >= 0, Int(size) <= LinuxGroups.NGROUPS_MAX else { throw .einval }
        let bytes = size == 0 ? [] : try task.copyIn(from: args.pointer(1), count: Int(size) * 4)
        let groups = stride(from: 0, to: bytes.count, by: 4).map { bytes.littleEndian(UInt32.self, at: $0) }
        guard !groups.contains(unchanged) else { throw .einval }
        task.commitCredentials(old.settingSupplementaryGIDs(groups))
        return 0
    }

    /// setuid/setgid: with the capability all three IDs, else only the
    /// effective one, and only to the real or saved ID.
    static func setID(_ task: Task, _ kind: Kind, _ id: UInt32) throws(SyscallError) -> Int64 {
        guard id != unchanged else { throw .einval }
        let old = task.credentials
        let ids = kind.ids(old)
        if old.hasCapability(kind.capability) {
            return try change(task, kind, real: id, effective: id, saved: id)
        }
        guard id == ids[0] || id == ids[2] else { throw .eperm }
        return try change(task, kind, real: nil, effective: id, saved: nil)
    }

    /// setreuid/setregid: the real ID may become the old real or effective
    /// one, the effective ID any of the three; the saved ID follows the new
    /// effective one when the real ID is set or the effective one becomes
    /// other than the old real one.
    static func setRealAndEffective(_ task: Task, _ kind: Kind, real: UInt32,
                                    effective: UInt32) throws(SyscallError) -> Int64 {
        let old = task.credentials
        let ids = kind.ids(old)
        let privileged = old.hasCapability(kind.capability)
        let newReal = real == unchanged ? nil : real
        let newEffective = effective == unchanged ? nil : effective
        if let newReal, !privileged, newReal != ids[0], newReal != ids[1] { throw .eperm }
        if let newEffective, !privileged, !ids.contains(newEffective) { throw .eperm }
        let savedFollows = newReal != nil || (newEffective != nil && newEffective != ids[0])
        return try change(task, kind, real: newReal, effective: newEffective,
                          saved: savedFollows ? (newEffective ?? ids[1]) : nil)
    }

    /// setresuid/setresgid: without the capability, each new ID must be one
    /// of the three old ones.
    static func setAll(_ task: Task, _ kind: Kind, _ real: UInt32, _ effective: UInt32,
                       _ saved: UInt32) throws(SyscallError) -> Int64 {
        let old = task.credentials
        let ids = kind.ids(old)
        let wanted = [real, effective, saved].map { $0 == unchanged ? nil : $0 }
        if !old.hasCapability(kind.capability) {
            for id in wanted.compactMap({ $0 }) where !ids.contains(id) { throw .eperm }
        }
        return try change(task, kind, real: wanted[0], effective: wanted[1], saved: wanted[2])
    }

    private static func change(_ task: Task, _ kind: Kind, real: UInt32?, effective: UInt32?,
                               saved: UInt32?) throws(SyscallError) -> Int64 {
        let old = task.credentials
        switch kind {
        case .user:
            task.commitCredentials(old.settingUserIDs(real: real, effective: effective, saved: saved,
                                                      securebits: task.controls.securebits))
        case .group:
            task.commitCredentials(old.settingGroupIDs(real: real, effective: effective, saved: saved))
        }
        return 0
    }

    /// setfsuid/setfsgid: always the old filesystem ID; the change only to
    /// one of the real, effective, saved or current filesystem IDs, or any
    /// with the capability. (uid_t)-1 changes nothing: how glibc asks.
    static func setFilesystemID(_ task: Task, _ kind: Kind, _ id: UInt32) -> Int64 {
        let old = task.credentials
        let current = kind == .user ? old.filesystemUID : old.filesystemGID
        guard id != unchanged, id != current,
              kind.ids(old).contains(id) || old.hasCapability(kind.capability) else { return Int64(current) }
        switch kind {
        case .user: task.commitCredentials(old.settingFilesystemUID(id, securebits: task.controls.securebits))
        case .group: task.commitCredentials(old.settingFilesystemGID(id))
        }
        return Int64(current)
    }
}

extension Task {
    /// commit_creds: a change of effective or filesystem IDs, or permitted
    /// capabilities gained, makes the process undumpable (suid_dumpable's
    /// default) and drops its parent-death signal.
    func commitCredentials(_ new: Credentials) {
        let old = credentials
        credentials = new
        guard old.isPrivilegeChange(to: new) else { return }
        controls.dumpable = 0
        setParentDeathSignal(0)
    }

    /// Written under the process tree lock: a parent's exit reads it from its own thread.
    func setParentDeathSignal(_ signal: Int32) {
        if let kernel {
            kernel.processTree.withLock { _ in controls.parentDeathSignal = signal }
        } else {
            controls.parentDeathSignal = signal
        }
    }
}

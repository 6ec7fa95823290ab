/// Permission and ownership calls: umask, chmod family, chown family,
/// utimensat, access family (fs/open.c, fs/utimes.c).
extension SyscallTable {
    mutating func registerFileAttributes() {
        register(95, AttributeSyscalls.umask)
        register(90, AttributeSyscalls.chmod)
        register(91, AttributeSyscalls.fchmod)
        register(268, AttributeSyscalls.fchmodat)
        register(92, AttributeSyscalls.chown)
        register(93, AttributeSyscalls.fchown)
        register(94, AttributeSyscalls.lchown)
        register(260, AttributeSyscalls.fchownat)
        register(280, AttributeSyscalls.utimensat)
        register(235) { task, args throws(SyscallError) in                                  // utimes
            try AttributeSyscalls.futimesat(task, dirfd: AttributeSyscalls.atFDCWD, pathAddress: args.pointer(0),
                                            timesAddress: args.pointer(1))
        }
        register(261) { task, args throws(SyscallError) in                                  // futimesat
            try AttributeSyscalls.futimesat(task, dirfd: args.int(0), pathAddress: args.pointer(1),
                                            timesAddress: args.pointer(2))
        }
        register(132, AttributeSyscalls.utime)
        register(21, AttributeSyscalls.access)
        register(269, AttributeSyscalls.faccessat)
        register(439, AttributeSyscalls.faccessat2)
    }
}

enum AttributeSyscalls {
    static let atFDCWD = LinuxFile.atCurrentDirectory
    static let utimeNow: Int64 = (1 << 30) - 1
    static let utimeOmit: Int64 = (1 << 30) - 2

    static func umask(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        Int64(task.fsContext.swapUmask(args.uint(0) & 0o777))
    }

    static func chmod(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try change(task, dirfd: atFDCWD, pathAddress: args.pointer(0), follow: true, emptyPath: false,
                   AttributeChange(mode: args.uint(1) & LinuxFile.permissionMask))
    }

    static func fchmod(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try changeFD(task, args.int(0), AttributeChange(mode: args.uint(1) & LinuxFile.permissionMask))
    }

    static func fchmodat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try change(task, dirfd: args.int(0), pathAddress: args.pointer(1), follow: true, emptyPath: false,
                   AttributeChange(mode: args.uint(2) & LinuxFile.permissionMask))
    }

    static func chown(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try change(task, dirfd: atFDCWD, pathAddress: args.pointer(0), follow: true, emptyPath: false,
                   ownership(args.uint(1), args.uint(2)))
    }

    static func fchown(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try changeFD(task, args.int(0), ownership(args.uint(1), args.uint(2)))
    }

    static func lchown(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try change(task, dirfd: atFDCWD, pathAddress: args.pointer(0), follow: false, emptyPath: false,
                   ownership(args.uint(1), args.uint(2)))
    }

    static func fchownat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(4)
        guard flags & ~(LinuxFile.atSymlinkNoFollow | LinuxFile.atEmptyPath) == 0 else { throw .einval }
        return try change(task, dirfd: args.int(0), pathAddress: args.pointer(1),
                          follow: flags & LinuxFile.atSymlinkNoFollow == 0,
                          emptyPath: flags & LinuxFile.atEmptyPath != 0, ownership(args.uint(2), args.uint(3)))
    }

    /// -1 leaves an ID unchanged.
    private static func ownership(_ uid: UInt32, _ gid: UInt32) -> AttributeChange {
        AttributeChange(uid: uid == UInt32.max ? nil : uid, gid: gid == UInt32.max ? nil : gid)
    }

    /// utimensat(2): NULL times means now for both (allowed to anyone who may
    /// write); UTIME_NOW and UTIME_OMIT per field; NULL path means dirfd itself.
    static func utimensat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let timesAddress = args.pointer(2)
        let now = FileTime.now()
        var change = AttributeChange(accessTime: now, modificationTime: now)
        var onlyNow = true
        if timesAddress != 0 {
            let raw = try task.copyIn(from: timesAddress, count: 32)
            var times: [FileTime?] = []
            for index in 0..<2 {
                let seconds = raw.littleEndian(Int64.self, at: index * 16)
                let nanoseconds = raw.littleEndian(Int64.self, at: index * 16 + 8)
                switch nanoseconds {
                case utimeOmit: times.append(nil)
                case utimeNow: times.append(now)
                case 0..<1_000_000_000:
                    times.append(FileTime(seconds: seconds, nanoseconds: nanoseconds))
                    onlyNow = false
                default: throw .einval
                }
            }
            if times[0] == nil, times[1] == nil { return 0 }
            change = AttributeChange(accessTime: times[0], modificationTime: times[1])
        }
        return try setTimes(task, dirfd: args.int(0), pathAddress: args.pointer(1), change: change, onlyNow: onlyNow,
                            flags: args.uint(3))
    }

    /// utimes(2) and futimesat(2): microsecond times (tv_usec within
    /// 0...999999, else EINVAL); NULL for now. futimesat with a NULL path
    /// changes the file `dirfd` names.
    static func futimesat(_ task: Task, dirfd: Int32, pathAddress: UInt64,
                          timesAddress: UInt64) throws(SyscallError) -> Int64 {
        guard timesAddress != 0 else { return try setTimesToNow(task, dirfd: dirfd, pathAddress: pathAddress) }
        let raw = try task.copyIn(from: timesAddress, count: 32)
        var times: [FileTime] = []
        for index in 0..<2 {
            let microseconds = raw.littleEndian(Int64.self, at: index * 16 + 8)
            guard (0..<1_000_000).contains(microseconds) else { throw .einval }
            times.append(FileTime(seconds: raw.littleEndian(Int64.self, at: index * 16), nanoseconds: microseconds * 1000))
        }
        return try setTimes(task, dirfd: dirfd, pathAddress: pathAddress,
                            change: AttributeChange(accessTime: times[0], modificationTime: times[1]),
                            onlyNow: false, flags: 0)
    }

    /// utime(2): whole seconds (struct utimbuf), NULL for now.
    static func utime(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.pointer(1) != 0 else { return try setTimesToNow(task, dirfd: atFDCWD, pathAddress: args.pointer(0)) }
        let raw = try task.copyIn(from: args.pointer(1), count: 16)
        let change = AttributeChange(accessTime: FileTime(seconds: raw.littleEndian(Int64.self, at: 0), nanoseconds: 0),
                                     modificationTime: FileTime(seconds: raw.littleEndian(Int64.self, at: 8),
                                                                nanoseconds: 0))
        return try setTimes(task, dirfd: atFDCWD, pathAddress: args.pointer(0), change: change, onlyNow: false, flags: 0)
    }

    private static func setTimesToNow(_ task: Task, dirfd: Int32, pathAddress: UInt64) throws(SyscallError) -> Int64 {
        let now = FileTime.now()
        return try setTimes(task, dirfd: dirfd, pathAddress: pathAddress,
                            change: AttributeChange(accessTime: now, modificationTime: now), onlyNow: true, flags: 0)
    }

    /// do_utimes: times set only to now need write permission, others
    /// ownership (`onlyNow`). A NULL path names `dirfd`'s file.
    private static func setTimes(_ task: Task, dirfd: Int32, pathAddress: UInt64, change: AttributeChange,
                                 onlyNow: Bool, flags: UInt32) throws(SyscallError) -> Int64 {
        guard flags & ~(LinuxFile.atSymlinkNoFollow | LinuxFile.atEmptyPath) == 0 else { throw .einval }
        let location: VirtualPath, context: PathContext
        var file: FileDescription?
        if pathAddress == 0 {
            guard flags & LinuxFile.atSymlinkNoFollow == 0 else { throw .einval }
            context = try task.pathContext()
            // A NULL path is a path to look up unless a descriptor is given: EFAULT.
            guard dirfd != atFDCWD else { throw .efault }
            let opened = try task.fdTable.get(dirfd)
            guard let fileLocation = opened.location else { throw .ebadf }
            location = fileLocation
            file = opened.isPathOnly ? nil : opened
        } else {
            let path = try FileSyscalls.path(task, pathAddress)
            (location, context) = try FileSyscalls.lookup(task, dirfd: dirfd, path: path,
                                                          follow: flags & LinuxFile.atSymlinkNoFollow == 0,
                                                          emptyPath: flags & LinuxFile.atEmptyPath != 0)
        }
        try task.virtualFilesystem().setAttributes(of: location, change: change, context: context,
                                                   timesToNowOnly: onlyNow, file: file)
        return 0
    }

    static func access(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try accessAt(task, dirfd: atFDCWD, pathAddress: args.pointer(0), mode: args.uint(1), flags: 0)
    }

    static func faccessat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try accessAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), mode: args.uint(2), flags: 0)
    }

    static func faccessat2(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try accessAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), mode: args.uint(2), flags: args.uint(3))
    }

    /// Checked with the real IDs unless AT_EACCESS, as access(2) says.
    private static func accessAt(_ task: Task, dirfd: Int32, pathAddress: UInt64, mode: UInt32,
                                 flags: UInt32) throws(SyscallError) -> Int64 {
        guard mode & ~0o7 == 0 else { throw .einval }
        guard flags & ~(LinuxFile.atEffectiveAccess | LinuxFile.atSymlinkNoFollow | LinuxFile.atEmptyPath) == 0 else {
            throw .einval
        }
        let path = try FileSyscalls.path(task, pathAddress)
        var (location, context) = try FileSyscalls.lookup(task, dirfd: dirfd, path: path,
                                                          follow: flags & LinuxFile.atSymlinkNoFollow == 0,
                                                          emptyPath: flags & LinuxFile.atEmptyPath != 0)
        if flags & LinuxFile.atEffectiveAccess == 0 {
            context.credentials.uid = task.credentials.realUID
            context.credentials.gid = task.credentials.realGID
        }
        try task.virtualFilesystem().checkAccess(location, mode: mode, context: context)
        return 0
    }

    private static func change(_ task: Task, dirfd: Int32, pathAddress: UInt64, follow: Bool, emptyPath: Bool,
                               _ change: AttributeChange) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, pathAddress)
        let (location, context) = try FileSyscalls.lookup(task, dirfd: dirfd, path: path, follow: follow,
                                                          emptyPath: emptyPath)
        try task.virtualFilesystem().setAttributes(of: location, change: change, context: context)
        return 0
    }

    private static func changeFD(_ task: Task, _ fd: Int32, _ change: AttributeChange) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(fd)
        guard let location = file.location, !file.isPathOnly else { throw .ebadf }
        try task.virtualFilesystem().setAttributes(of: location, change: change, context: try task.pathContext(),
                                                   file: file)
        return 0
    }
}

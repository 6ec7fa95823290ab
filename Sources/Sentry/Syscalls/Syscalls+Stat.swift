/// stat, lstat, fstat, newfstatat, statx, statfs, fstatfs (fs/stat.c, fs/statfs.c).
extension SyscallTable {
    mutating func registerFileStat() {
        register(4, StatSyscalls.stat)
        register(5, StatSyscalls.fstat)
        register(6, StatSyscalls.lstat)
        register(262, StatSyscalls.newfstatat)
        register(332, StatSyscalls.statx)
        register(137, StatSyscalls.statfs)
        register(138, StatSyscalls.fstatfs)
    }
}

enum StatSyscalls {
    static let statxReserved: UInt32 = 0x8000_0000
    static let pipeFilesystemMagic: Int64 = 0x5049_5045

    static func stat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try statAt(task, dirfd: LinuxFile.atCurrentDirectory, pathAddress: args.pointer(0), buffer: args.pointer(1),
                   flags: 0)
    }

    static func lstat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try statAt(task, dirfd: LinuxFile.atCurrentDirectory, pathAddress: args.pointer(0), buffer: args.pointer(1),
                   flags: LinuxFile.atSymlinkNoFollow)
    }

    static func fstat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        try task.copyOut(try file.attributes().encodeStat(), to: args.pointer(1))
        return 0
    }

    static func newfstatat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try statAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), buffer: args.pointer(2),
                   flags: args.uint(3))
    }

    static func statAt(_ task: Task, dirfd: Int32, pathAddress: UInt64, buffer: UInt64,
                       flags: UInt32) throws(SyscallError) -> Int64 {
        guard flags & ~(LinuxFile.atSymlinkNoFollow | LinuxFile.atNoAutomount | LinuxFile.atEmptyPath) == 0 else {
            throw .einval
        }
        let attributes = try attributesAt(task, dirfd: dirfd, pathAddress: pathAddress, flags: flags)
        try task.copyOut(attributes.encodeStat(), to: buffer)
        return 0
    }

    static func statx(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(2), mask = args.uint(3)
        guard mask & statxReserved == 0 else { throw .einval }
        let valid = LinuxFile.atSymlinkNoFollow | LinuxFile.atNoAutomount | LinuxFile.atEmptyPath
            | LinuxFile.atStatxSyncTypeMask
        guard flags & ~valid == 0, flags & LinuxFile.atStatxSyncTypeMask != LinuxFile.atStatxSyncTypeMask else {
            throw .einval
        }
        let attributes = try attributesAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), flags: flags)
        try task.copyOut(attributes.encodeStatx(), to: args.pointer(4))
        return 0
    }

    /// The attributes a stat-family call reports: an FD's with an empty path
    /// and AT_EMPTY_PATH, else the path's (following it unless AT_SYMLINK_NOFOLLOW).
    static func attributesAt(_ task: Task, dirfd: Int32, pathAddress: UInt64,
                             flags: UInt32) throws(SyscallError) -> FileAttributes {
        let path = try FileSyscalls.path(task, pathAddress)
        if path.isEmpty, flags & LinuxFile.atEmptyPath != 0, dirfd != LinuxFile.atCurrentDirectory {
            return try task.fdTable.get(dirfd).attributes()
        }
        let (location, _) = try FileSyscalls.lookup(task, dirfd: dirfd, path: path,
                                                    follow: flags & LinuxFile.atSymlinkNoFollow == 0,
                                                    emptyPath: flags & LinuxFile.atEmptyPath != 0)
        return try location.inode.attributesAfterWalk()
    }

    static func statfs(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, args.pointer(0))
        let (location, _) = try FileSyscalls.lookup(task, dirfd: LinuxFile.atCurrentDirectory, path: path,
                                                    follow: true, emptyPath: false)
        try task.copyOut(try location.mount.filesystem.statistics().encode(), to: args.pointer(1))
        return 0
    }

    static func fstatfs(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        let statistics: FilesystemStatistics
        if let location = file.location {
            statistics = try location.mount.filesystem.statistics()
        } else {
            statistics = FilesystemStatistics(type: pipeFilesystemMagic, blockSize: 4096, blocks: 0, freeBlocks: 0,
                                              availableBlocks: 0, files: 0, freeFiles: 0,
                                              nameLength: Int64(LinuxFile.nameMax))
        }
        try task.copyOut(statistics.encode(), to: args.pointer(1))
        return 0
    }
}

/// open, openat, creat, close (fs/open.c).
extension SyscallTable {
    mutating func registerFileOpen() {
        register(2, OpenSyscalls.open)
        register(85, OpenSyscalls.creat)
        register(257, OpenSyscalls.openat)
        register(3, OpenSyscalls.close)
        register(436, OpenSyscalls.closeRange)
    }
}

enum OpenSyscalls {
    static func open(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try openAt(task, dirfd: LinuxFile.atCurrentDirectory, pathAddress: args.pointer(0), flags: args.uint(1),
                   mode: args.uint(2))
    }

    static func creat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try openAt(task, dirfd: LinuxFile.atCurrentDirectory, pathAddress: args.pointer(0),
                   flags: LinuxFile.create | LinuxFile.writeOnly | LinuxFile.truncate, mode: args.uint(1))
    }

    static func openat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try openAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), flags: args.uint(2), mode: args.uint(3))
    }

    static func close(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try task.fdTable.remove(args.int(0))
        return 0
    }

    /// close_range(first, last, flags): EINVAL for unknown flags or first
    /// past last; CLOSE_RANGE_UNSHARE gives the task a table of its own
    /// first (threads of CLONE_FILES keep theirs), CLOSE_RANGE_CLOEXEC
    /// marks instead of closing. Descriptors not open are passed over.
    static func closeRange(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let first = args.uint(0), last = args.uint(1), flags = args.uint(2)
        guard flags & ~(closeRangeUnshare | closeRangeCloseOnExec) == 0, first <= last else { throw .einval }
        guard first <= UInt32(Int32.max) else { return 0 }
        if flags & closeRangeUnshare != 0 {
            let shared = task.fdTable
            task.fdTable = shared.fork()
            shared.removeUser()
        }
        task.fdTable.closeRange(Int32(first)...Int32(min(last, UInt32(Int32.max))),
                                closeOnExec: flags & closeRangeCloseOnExec != 0)
        return 0
    }

    static let closeRangeUnshare: UInt32 = 1 << 1, closeRangeCloseOnExec: UInt32 = 1 << 2

    /// The common open: the file's status flags get O_LARGEFILE as on any
    /// 64-bit Linux; O_CLOEXEC goes to the FD table.
    static func openAt(_ task: Task, dirfd: Int32, pathAddress: UInt64, flags: UInt32,
                       mode: UInt32) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, pathAddress)
        let (start, context) = try FileSyscalls.start(task, dirfd: dirfd, path: path)
        let vfs = try task.virtualFilesystem()
        let file = try vfs.open(path, from: start, context: context, flags: flags | LinuxFile.largeFile,
                                mode: mode, umask: task.fsContext.umask)
        let fd = try file.completeOpen(waiter: task.waiter) { file throws(SyscallError) in
            try task.fdTable.install(file, closeOnExec: flags & LinuxFile.closeOnExec != 0, limit: task.fileDescriptorLimit)
        }
        return Int64(fd)
    }
}

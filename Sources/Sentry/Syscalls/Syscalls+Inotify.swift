/// inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch
/// (fs/notify/inotify/inotify_user.c); the instance is Inotify/InotifyFile.swift.
extension SyscallTable {
    mutating func registerInotify() {
        register(253, InotifySyscalls.initialize)
        register(294, InotifySyscalls.initialize1)
        register(254, InotifySyscalls.addWatch)
        register(255, InotifySyscalls.removeWatch)
    }
}

enum InotifySyscalls {
    static func initialize(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try create(task, flags: 0)
    }

    static func initialize1(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try create(task, flags: args.uint(0))
    }

    /// do_inotify_init: EINVAL for flags beyond IN_CLOEXEC and IN_NONBLOCK.
    private static func create(_ task: Task, flags: UInt32) throws(SyscallError) -> Int64 {
        guard flags & ~(InotifyABI.IN_CLOEXEC | InotifyABI.IN_NONBLOCK) == 0 else { throw .einval }
        let file = InotifyFile(flags: flags & InotifyABI.IN_NONBLOCK)
        return Int64(try task.fdTable.install(file, closeOnExec: flags & InotifyABI.IN_CLOEXEC != 0,
                                              limit: task.fileDescriptorLimit))
    }

    /// inotify_add_watch, in Linux's order: EINVAL for IN_MASK_ADD with
    /// IN_MASK_CREATE or a mask with no inotify bit, EBADF, EINVAL for a
    /// descriptor that is no inotify instance, the path's errors (ENOTDIR
    /// under IN_ONLYDIR), EACCES without read permission, EEXIST under
    /// IN_MASK_CREATE for a watched file.
    static func addWatch(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let mask = args.uint(2)
        if mask & InotifyABI.IN_MASK_ADD != 0, mask & InotifyABI.IN_MASK_CREATE != 0 { throw .einval }
        guard mask & InotifyABI.allBits != 0 else { throw .einval }
        guard let instance = try task.fdTable.get(args.int(0)) as? InotifyFile else { throw .einval }
        let path = try FileSyscalls.path(task, args.pointer(1))
        let (location, context) = try FileSyscalls.lookup(task, dirfd: LinuxFile.atCurrentDirectory, path: path,
                                                          follow: mask & InotifyABI.IN_DONT_FOLLOW == 0,
                                                          emptyPath: false)
        if mask & InotifyABI.IN_ONLYDIR != 0, !location.inode.isDirectory { throw .enotdir }
        guard location.inode.mayAccess(context.credentials, want: LinuxFile.mayRead) else { throw .eacces }
        return Int64(try instance.addWatch(on: location.inode, mask: mask))
    }

    /// inotify_rm_watch: EBADF, EINVAL for no inotify instance or an unknown watch.
    static func removeWatch(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let instance = try task.fdTable.get(args.int(0)) as? InotifyFile else { throw .einval }
        try instance.removeWatch(args.int(1))
        return 0
    }
}

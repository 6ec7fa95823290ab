/// The namespace calls: getdents64, getcwd, chdir, fchdir, chroot, mkdir, mknod,
/// rmdir, unlink, rename, link, symlink, readlink and their *at forms (fs/namei.c, fs/readdir.c).
extension SyscallTable {
    mutating func registerFileDirectory() {
        register(217, DirectorySyscalls.getdents64)
        register(79, DirectorySyscalls.getcwd)
        register(80, DirectorySyscalls.chdir)
        register(81, DirectorySyscalls.fchdir)
        register(161, DirectorySyscalls.chroot)
        register(83, DirectorySyscalls.mkdir)
        register(258, DirectorySyscalls.mkdirat)
        register(133, DirectorySyscalls.mknod)
        register(259, DirectorySyscalls.mknodat)
        register(84, DirectorySyscalls.rmdir)
        register(87, DirectorySyscalls.unlink)
        register(263, DirectorySyscalls.unlinkat)
        register(82, DirectorySyscalls.rename)
        register(264, DirectorySyscalls.renameat)
        register(316, DirectorySyscalls.renameat2)
        register(86, DirectorySyscalls.link)
        register(265, DirectorySyscalls.linkat)
        register(88, DirectorySyscalls.symlink)
        register(266, DirectorySyscalls.symlinkat)
        register(89, DirectorySyscalls.readlink)
        register(267, DirectorySyscalls.readlinkat)
    }
}

enum DirectorySyscalls {
    static let atFDCWD = LinuxFile.atCurrentDirectory

    static func getdents64(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        let capacity = Int(min(args.uint64(2), UInt64(Int32.max)))
        let records = try file.readDirectory(capacity: capacity)
        try task.copyOut(records, to: args.pointer(1))
        return Int64(records.count)
    }

    static func getcwd(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let cwd = try task.fsContext.workingDirectory()
        let root = try task.fsContext.root()
        var path: String
        if let reachable = VirtualFilesystem.pathString(of: cwd, root: root) {
            path = reachable
        } else {
            path = "(unreachable)" + (VirtualFilesystem.absolutePath(of: cwd) ?? "/")
        }
        if cwd.dentry.isDeleted { throw .enoent }
        let bytes = Array(path.utf8) + [0]
        guard UInt64(bytes.count) <= args.uint64(1) else { throw .erange }
        try task.copyOut(bytes, to: args.pointer(0))
        return Int64(bytes.count)
    }

    static func chdir(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, args.pointer(0))
        let (location, context) = try FileSyscalls.lookup(task, dirfd: atFDCWD, path: path, follow: true,
                                                          emptyPath: false)
        try enter(task, location, context)
        return 0
    }

    static func fchdir(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        guard let location = file.location else { throw .enotdir }
        try enter(task, location, try task.pathContext())
        return 0
    }

    static let capSysChroot = 18

    /// chroot(2): lookup errors, ENOTDIR, EACCES without search permission,
    /// then EPERM without CAP_SYS_CHROOT, as ksys_chroot checks them. The
    /// working directory stays where it was.
    static func chroot(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, args.pointer(0))
        let (location, context) = try FileSyscalls.lookup(task, dirfd: atFDCWD, path: path, follow: true,
                                                          emptyPath: false)
        guard location.inode.isDirectory else { throw .enotdir }
        guard location.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
        guard task.credentials.hasCapability(capSysChroot) else { throw .eperm }
        task.fsContext.setRoot(location)
        return 0
    }

    private static func enter(_ task: Task, _ location: VirtualPath, _ context: PathContext) throws(SyscallError) {
        guard location.inode.isDirectory else { throw .enotdir }
        guard location.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
        task.fsContext.setWorkingDirectory(location)
    }

    static func mkdir(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try mkdirAt(task, dirfd: atFDCWD, pathAddress: args.pointer(0), mode: args.uint(1))
    }

    static func mkdirat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try mkdirAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), mode: args.uint(2))
    }

    private static func mkdirAt(_ task: Task, dirfd: Int32, pathAddress: UInt64,
                                mode: UInt32) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, pathAddress)
        let (start, context) = try FileSyscalls.start(task, dirfd: dirfd, path: path)
        try task.virtualFilesystem().makeDirectory(path, from: start, context: context, mode: mode,
                                                   umask: task.fsContext.umask)
        return 0
    }

    static let capMknod = 27

    static func mknod(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try mknodAt(task, dirfd: atFDCWD, pathAddress: args.pointer(0), mode: args.uint(1))
    }

    static func mknodat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try mknodAt(task, dirfd: args.int(0), pathAddress: args.pointer(1), mode: args.uint(2))
    }

    /// The type is checked before the path, as may_mknod runs first: EPERM
    /// for a directory, EINVAL for no known type.
    private static func mknodAt(_ task: Task, dirfd: Int32, pathAddress: UInt64,
                                mode: UInt32) throws(SyscallError) -> Int64 {
        let type = mode & LinuxFile.typeMask
        if type == FileType.directory.rawValue { throw .eperm }
        guard type == 0 || [.regular, .characterDevice, .blockDevice, .fifo, .socket].contains(FileType(mode: type))
        else { throw .einval }
        let path = try FileSyscalls.path(task, pathAddress)
        let (start, context) = try FileSyscalls.start(task, dirfd: dirfd, path: path)
        try task.virtualFilesystem().makeNode(path, from: start, context: context, mode: mode,
                                              umask: task.fsContext.umask,
                                              mayMakeDevices: task.credentials.hasCapability(capMknod))
        return 0
    }

    static func rmdir(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try removeAt(task, dirfd: atFDCWD, pathAddress: args.pointer(0), directory: true)
    }

    static func unlink(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try removeAt(task, dirfd: atFDCWD, pathAddress: args.pointer(0), directory: false)
    }

    static func unlinkat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(2)
        guard flags & ~LinuxFile.atRemoveDirectory == 0 else { throw .einval }
        return try removeAt(task, dirfd: args.int(0), pathAddress: args.pointer(1),
                            directory: flags & LinuxFile.atRemoveDirectory != 0)
    }

    private static func removeAt(_ task: Task, dirfd: Int32, pathAddress: UInt64,
                                 directory: Bool) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, pathAddress)
        let (start, context) = try FileSyscalls.start(task, dirfd: dirfd, path: path)
        try task.virtualFilesystem().remove(path, from: start, context: context, directory: directory)
        return 0
    }

    static func rename(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try renameAt(task, atFDCWD, args.pointer(0), atFDCWD, args.pointer(1), flags: 0)
    }

    static func renameat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try renameAt(task, args.int(0), args.pointer(1), args.int(2), args.pointer(3), flags: 0)
    }

    static func renameat2(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try renameAt(task, args.int(0), args.pointer(1), args.int(2), args.pointer(3), flags: args.uint(4))
    }

    private static func renameAt(_ task: Task, _ oldDirfd: Int32, _ oldAddress: UInt64, _ newDirfd: Int32,
                                 _ newAddress: UInt64, flags: UInt32) throws(SyscallError) -> Int64 {
        let oldPath = try FileSyscalls.path(task, oldAddress)
        let newPath = try FileSyscalls.path(task, newAddress)
        let (oldStart, context) = try FileSyscalls.start(task, dirfd: oldDirfd, path: oldPath)
        let (newStart, _) = try FileSyscalls.start(task, dirfd: newDirfd, path: newPath)
        try task.virtualFilesystem().rename(oldPath, from: oldStart, to: newPath, from: newStart, context: context,
                                            flags: flags)
        return 0
    }

    static func link(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try linkAt(task, atFDCWD, args.pointer(0), atFDCWD, args.pointer(1), flags: 0)
    }

    static func linkat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try linkAt(task, args.int(0), args.pointer(1), args.int(2), args.pointer(3), flags: args.uint(4))
    }

    private static func linkAt(_ task: Task, _ oldDirfd: Int32, _ oldAddress: UInt64, _ newDirfd: Int32,
                               _ newAddress: UInt64, flags: UInt32) throws(SyscallError) -> Int64 {
        guard flags & ~(LinuxFile.atSymlinkFollow | LinuxFile.atEmptyPath) == 0 else { throw .einval }
        let oldPath = try FileSyscalls.path(task, oldAddress)
        let (existing, _) = try FileSyscalls.lookup(task, dirfd: oldDirfd, path: oldPath,
                                                    follow: flags & LinuxFile.atSymlinkFollow != 0,
                                                    emptyPath: flags & LinuxFile.atEmptyPath != 0)
        let newPath = try FileSyscalls.path(task, newAddress)
        let (newStart, context) = try FileSyscalls.start(task, dirfd: newDirfd, path: newPath)
        try task.virtualFilesystem().makeLink(to: existing, at: newPath, from: newStart, context: context)
        return 0
    }

    static func symlink(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try symlinkAt(task, args.pointer(0), atFDCWD, args.pointer(1))
    }

    static func symlinkat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try symlinkAt(task, args.pointer(0), args.int(1), args.pointer(2))
    }

    private static func symlinkAt(_ task: Task, _ targetAddress: UInt64, _ dirfd: Int32,
                                  _ pathAddress: UInt64) throws(SyscallError) -> Int64 {
        let target = try FileSyscalls.path(task, targetAddress)
        let path = try FileSyscalls.path(task, pathAddress)
        let (start, context) = try FileSyscalls.start(task, dirfd: dirfd, path: path)
        try task.virtualFilesystem().makeSymlink(target: target, at: path, from: start, context: context)
        return 0
    }

    static func readlink(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try readlinkAt(task, atFDCWD, args.pointer(0), args.pointer(1), args.int64(2))
    }

    static func readlinkat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try readlinkAt(task, args.int(0), args.pointer(1), args.pointer(2), args.int64(3))
    }

    /// EINVAL for a size ≤ 0 (checked first, as Linux does) or a non-symlink;
    /// the target is truncated to the buffer, without a NUL.
    private static func readlinkAt(_ task: Task, _ dirfd: Int32, _ pathAddress: UInt64, _ buffer: UInt64,
                                   _ size: Int64) throws(SyscallError) -> Int64 {
        guard Int32(truncatingIfNeeded: size) > 0 else { throw .einval }
        let path = try FileSyscalls.path(task, pathAddress)
        let (location, context) = try FileSyscalls.lookup(task, dirfd: dirfd, path: path, follow: false,
                                                          emptyPath: true)
        let target = Array(try VirtualFilesystem.readLink(of: location, context: context).utf8)
        let count = min(target.count, Int(Int32(truncatingIfNeeded: size)))
        try task.copyOut(target[..<count], to: buffer)
        return Int64(count)
    }
}

/// The xattr family (fs/xattr.c). No filesystem of the Sentry stores extended
/// attributes: every name reads as absent (ENODATA), lists are empty and
/// setting one is EOPNOTSUPP, as on a Linux filesystem mounted without
/// user xattrs. Arguments are checked in Linux's order, so programs that probe
/// for ACLs or SELinux labels (GNU ls, cp -a, tar) see a plain filesystem.
extension SyscallTable {
    mutating func registerExtendedAttributes() {
        register(188) { task, args throws(SyscallError) in
            try XattrSyscalls.set(task, path: args.pointer(0), follow: true, args.pointer(1), args.pointer(2),
                                  args.uint64(3), args.uint(4))
        }
        register(189) { task, args throws(SyscallError) in
            try XattrSyscalls.set(task, path: args.pointer(0), follow: false, args.pointer(1), args.pointer(2),
                                  args.uint64(3), args.uint(4))
        }
        register(190) { task, args throws(SyscallError) in
            try XattrSyscalls.set(task, fd: args.int(0), args.pointer(1), args.pointer(2), args.uint64(3), args.uint(4))
        }
        register(191) { task, args throws(SyscallError) in
            try XattrSyscalls.get(task, path: args.pointer(0), follow: true, args.pointer(1))
        }
        register(192) { task, args throws(SyscallError) in
            try XattrSyscalls.get(task, path: args.pointer(0), follow: false, args.pointer(1))
        }
        register(193) { task, args throws(SyscallError) in try XattrSyscalls.get(task, fd: args.int(0), args.pointer(1)) }
        register(194) { task, args throws(SyscallError) in try XattrSyscalls.list(task, path: args.pointer(0), follow: true) }
        register(195) { task, args throws(SyscallError) in try XattrSyscalls.list(task, path: args.pointer(0), follow: false) }
        register(196) { task, args throws(SyscallError) in try XattrSyscalls.list(task, fd: args.int(0)) }
        register(197) { task, args throws(SyscallError) in
            try XattrSyscalls.remove(task, path: args.pointer(0), follow: true, args.pointer(1))
        }
        register(198) { task, args throws(SyscallError) in
            try XattrSyscalls.remove(task, path: args.pointer(0), follow: false, args.pointer(1))
        }
        register(199) { task, args throws(SyscallError) in try XattrSyscalls.remove(task, fd: args.int(0), args.pointer(1)) }
    }
}

enum XattrSyscalls {
    /// Where an xattr call applies and who asks.
    private typealias Target = (location: VirtualPath, context: PathContext)

    static func get(_ task: Task, path: UInt64, follow: Bool, _ nameAddress: UInt64) throws(SyscallError) -> Int64 {
        let name = try attributeName(task, nameAddress)
        try checkRead(name, try lookup(task, path, follow: follow))
        throw .enodata
    }

    static func get(_ task: Task, fd: Int32, _ nameAddress: UInt64) throws(SyscallError) -> Int64 {
        let target = try file(task, fd)
        try checkRead(try attributeName(task, nameAddress), target)
        throw .enodata
    }

    /// An empty list: zero bytes, whatever the buffer.
    static func list(_ task: Task, path: UInt64, follow: Bool) throws(SyscallError) -> Int64 {
        _ = try lookup(task, path, follow: follow)
        return 0
    }

    static func list(_ task: Task, fd: Int32) throws(SyscallError) -> Int64 {
        _ = try file(task, fd)
        return 0
    }

    static func set(_ task: Task, path: UInt64, follow: Bool, _ nameAddress: UInt64, _ valueAddress: UInt64,
                    _ size: UInt64, _ flags: UInt32) throws(SyscallError) -> Int64 {
        let name = try copySetArguments(task, nameAddress, valueAddress, size, flags)
        try checkWrite(name, try lookup(task, path, follow: follow))
        throw .eopnotsupp
    }

    static func set(_ task: Task, fd: Int32, _ nameAddress: UInt64, _ valueAddress: UInt64, _ size: UInt64,
                    _ flags: UInt32) throws(SyscallError) -> Int64 {
        let target = try file(task, fd)
        try checkWrite(try copySetArguments(task, nameAddress, valueAddress, size, flags), target)
        throw .eopnotsupp
    }

    static func remove(_ task: Task, path: UInt64, follow: Bool, _ nameAddress: UInt64) throws(SyscallError) -> Int64 {
        let name = try attributeName(task, nameAddress)
        try checkWrite(name, try lookup(task, path, follow: follow))
        throw .enodata
    }

    static func remove(_ task: Task, fd: Int32, _ nameAddress: UInt64) throws(SyscallError) -> Int64 {
        let target = try file(task, fd)
        try checkWrite(try attributeName(task, nameAddress), target)
        throw .enodata
    }

    // MARK: Linux's steps

    /// import_xattr_name: ERANGE for an empty name or one over XATTR_NAME_MAX.
    private static func attributeName(_ task: Task, _ address: UInt64) throws(SyscallError) -> String {
        let name: String
        do throws(SyscallError) {
            name = try task.copyInString(from: address, maxLength: LinuxFile.xattrNameMax)
        } catch .enametoolong {
            throw .erange
        }
        guard !name.isEmpty else { throw .erange }
        return name
    }

    /// setxattr_copy: the flags, the name, the size, then the value.
    private static func copySetArguments(_ task: Task, _ nameAddress: UInt64, _ valueAddress: UInt64, _ size: UInt64,
                                         _ flags: UInt32) throws(SyscallError) -> String {
        guard flags & ~(LinuxFile.xattrCreate | LinuxFile.xattrReplace) == 0 else { throw .einval }
        let name = try attributeName(task, nameAddress)
        guard size <= UInt64(LinuxFile.xattrSizeMax) else { throw .e2big }
        if size > 0 { _ = try task.copyIn(from: valueAddress, count: Int(size)) }
        return name
    }

    private static func lookup(_ task: Task, _ pathAddress: UInt64, follow: Bool) throws(SyscallError) -> Target {
        let path = try FileSyscalls.path(task, pathAddress)
        return try FileSyscalls.lookup(task, dirfd: LinuxFile.atCurrentDirectory, path: path, follow: follow,
                                       emptyPath: false)
    }

    /// fdget: an O_PATH descriptor is EBADF for the f-calls.
    private static func file(_ task: Task, _ fd: Int32) throws(SyscallError) -> Target {
        let file = try task.fdTable.get(fd)
        guard !file.isPathOnly, let location = file.location else { throw .ebadf }
        return (location, try task.pathContext())
    }

    /// xattr_permission for reading: an unknown namespace is EOPNOTSUPP; a
    /// user attribute of something other than a file or directory cannot
    /// exist; otherwise reading needs read permission.
    private static func checkRead(_ name: String, _ target: Target) throws(SyscallError) {
        let namespace = try attributeNamespace(name)
        guard namespace == "user." else { return }
        let type = target.location.inode.type
        guard type == .regular || type == .directory else { throw .enodata }
        guard target.location.inode.mayAccess(target.context.credentials, want: LinuxFile.mayRead) else {
            throw .eacces
        }
    }

    /// The write side: a read-only mount first (mnt_want_write), then the namespace.
    private static func checkWrite(_ name: String, _ target: Target) throws(SyscallError) {
        guard target.location.mount.isWritable else { throw .erofs }
        let namespace = try attributeNamespace(name)
        guard namespace == "user." else { return }
        let type = target.location.inode.type
        guard type == .regular || type == .directory else { throw .eperm }
        guard target.location.inode.mayAccess(target.context.credentials, want: LinuxFile.mayWrite) else {
            throw .eacces
        }
    }

    private static func attributeNamespace(_ name: String) throws(SyscallError) -> String {
        guard let namespace = LinuxFile.xattrNamespaces.first(where: { name.hasPrefix($0) }) else {
            throw .eopnotsupp
        }
        return namespace
    }
}

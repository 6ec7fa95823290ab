/// The xattr family (fs/xattr.c), arguments checked in Linux's order. tmpfs
/// keeps attributes (user, trusted, security) as Linux's does; the other
/// filesystems have none: names read as absent (ENODATA), lists are empty and
/// setting is EOPNOTSUPP, as on a Linux filesystem without extended
/// attributes, so programs that probe for ACLs or SELinux labels (GNU ls,
/// cp -a, tar) see a plain filesystem.
extension SyscallTable {
    mutating func registerExtendedAttributes() {
        register(188) { task, args throws(SyscallError) in
            try XattrSyscalls.set(task, try XattrSyscalls.target(task, path: args.pointer(0), follow: true),
                                  args.pointer(1), args.pointer(2), args.uint64(3), args.uint(4))
        }
        register(189) { task, args throws(SyscallError) in
            try XattrSyscalls.set(task, try XattrSyscalls.target(task, path: args.pointer(0), follow: false),
                                  args.pointer(1), args.pointer(2), args.uint64(3), args.uint(4))
        }
        register(190) { task, args throws(SyscallError) in
            try XattrSyscalls.set(task, try XattrSyscalls.target(task, fd: args.int(0)), args.pointer(1),
                                  args.pointer(2), args.uint64(3), args.uint(4))
        }
        register(191) { task, args throws(SyscallError) in
            try XattrSyscalls.get(task, path: args.pointer(0), follow: true, args.pointer(1), args.pointer(2),
                                  args.uint64(3))
        }
        register(192) { task, args throws(SyscallError) in
            try XattrSyscalls.get(task, path: args.pointer(0), follow: false, args.pointer(1), args.pointer(2),
                                  args.uint64(3))
        }
        register(193) { task, args throws(SyscallError) in
            let target = try XattrSyscalls.target(task, fd: args.int(0))
            return try XattrSyscalls.get(task, target, try XattrSyscalls.attributeName(task, args.pointer(1)),
                                         args.pointer(2), args.uint64(3))
        }
        register(194) { task, args throws(SyscallError) in
            try XattrSyscalls.list(task, try XattrSyscalls.target(task, path: args.pointer(0), follow: true),
                                   args.pointer(1), args.uint64(2))
        }
        register(195) { task, args throws(SyscallError) in
            try XattrSyscalls.list(task, try XattrSyscalls.target(task, path: args.pointer(0), follow: false),
                                   args.pointer(1), args.uint64(2))
        }
        register(196) { task, args throws(SyscallError) in
            try XattrSyscalls.list(task, try XattrSyscalls.target(task, fd: args.int(0)), args.pointer(1),
                                   args.uint64(2))
        }
        register(197) { task, args throws(SyscallError) in
            try XattrSyscalls.remove(task, path: args.pointer(0), follow: true, args.pointer(1))
        }
        register(198) { task, args throws(SyscallError) in
            try XattrSyscalls.remove(task, path: args.pointer(0), follow: false, args.pointer(1))
        }
        register(199) { task, args throws(SyscallError) in
            let target = try XattrSyscalls.target(task, fd: args.int(0))
            return try XattrSyscalls.remove(task, target, try XattrSyscalls.attributeName(task, args.pointer(1)))
        }
    }
}

enum XattrSyscalls {
    /// Where an xattr call applies and who asks.
    typealias Target = (location: VirtualPath, context: PathContext)

    /// XATTR_LIST_MAX.
    static let listMax = 65536

    /// getxattr/lgetxattr: the name is read before the path is walked.
    static func get(_ task: Task, path: UInt64, follow: Bool, _ nameAddress: UInt64, _ valueAddress: UInt64,
                    _ size: UInt64) throws(SyscallError) -> Int64 {
        let name = try attributeName(task, nameAddress)
        return try get(task, try target(task, path: path, follow: follow), name, valueAddress, size)
    }

    /// The value's length with size 0, else the value (ERANGE if it does not fit).
    static func get(_ task: Task, _ target: Target, _ name: String, _ valueAddress: UInt64,
                    _ size: UInt64) throws(SyscallError) -> Int64 {
        try checkAccess(task, name, target, write: false)
        guard let filesystem = target.location.inode.filesystem else { throw .enodata }
        let value = try filesystem.extendedAttribute(name, of: target.location.inode)
        return try copyOut(task, value, to: valueAddress, size: min(size, UInt64(LinuxFile.xattrSizeMax)))
    }

    /// NUL-terminated names; trusted ones only for CAP_SYS_ADMIN.
    static func list(_ task: Task, _ target: Target, _ listAddress: UInt64,
                     _ size: UInt64) throws(SyscallError) -> Int64 {
        let privileged = task.credentials.hasCapability(LinuxProcess.CAP_SYS_ADMIN)
        let names = target.location.inode.filesystem?.extendedAttributeNames(of: target.location.inode) ?? []
        let bytes: [UInt8] = names.filter { privileged || !$0.hasPrefix("trusted.") }
            .flatMap { name -> [UInt8] in Array(name.utf8) + [0] }
        return try copyOut(task, bytes, to: listAddress, size: min(size, UInt64(listMax)))
    }

    static func set(_ task: Task, _ target: Target, _ nameAddress: UInt64, _ valueAddress: UInt64, _ size: UInt64,
                    _ flags: UInt32) throws(SyscallError) -> Int64 {
        let (name, value) = try copySetArguments(task, nameAddress, valueAddress, size, flags)
        try checkAccess(task, name, target, write: true)
        guard let filesystem = target.location.inode.filesystem, !name.hasPrefix("system.") else {
            throw .eopnotsupp
        }
        try filesystem.setExtendedAttribute(name, of: target.location.inode, to: value, flags: flags)
        return 0
    }

    static func remove(_ task: Task, path: UInt64, follow: Bool, _ nameAddress: UInt64) throws(SyscallError) -> Int64 {
        let name = try attributeName(task, nameAddress)
        return try remove(task, try target(task, path: path, follow: follow), name)
    }

    static func remove(_ task: Task, _ target: Target, _ name: String) throws(SyscallError) -> Int64 {
        try checkAccess(task, name, target, write: true)
        guard let filesystem = target.location.inode.filesystem else { throw .enodata }
        try filesystem.removeExtendedAttribute(name, of: target.location.inode)
        return 0
    }

    // MARK: Linux's steps

    /// import_xattr_name: ERANGE for an empty name or one over XATTR_NAME_MAX.
    static func attributeName(_ task: Task, _ address: UInt64) throws(SyscallError) -> String {
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
                                         _ flags: UInt32) throws(SyscallError) -> (String, [UInt8]) {
        guard flags & ~(LinuxFile.xattrCreate | LinuxFile.xattrReplace) == 0 else { throw .einval }
        let name = try attributeName(task, nameAddress)
        guard size <= UInt64(LinuxFile.xattrSizeMax) else { throw .e2big }
        let value = size > 0 ? try task.copyIn(from: valueAddress, count: Int(size)) : []
        return (name, value)
    }

    /// Size 0 asks for the length; a buffer too small is ERANGE.
    private static func copyOut(_ task: Task, _ bytes: [UInt8], to address: UInt64,
                                size: UInt64) throws(SyscallError) -> Int64 {
        guard size > 0 else { return Int64(bytes.count) }
        guard UInt64(bytes.count) <= size else { throw .erange }
        if !bytes.isEmpty { try task.copyOut(bytes, to: address) }
        return Int64(bytes.count)
    }

    static func target(_ task: Task, path pathAddress: UInt64, follow: Bool) throws(SyscallError) -> Target {
        let path = try FileSyscalls.path(task, pathAddress)
        return try FileSyscalls.lookup(task, dirfd: LinuxFile.atCurrentDirectory, path: path, follow: follow,
                                       emptyPath: false)
    }

    /// fdget: an O_PATH descriptor is EBADF for the f-calls.
    static func target(_ task: Task, fd: Int32) throws(SyscallError) -> Target {
        let file = try task.fdTable.get(fd)
        guard !file.isPathOnly, let location = file.location else { throw .ebadf }
        return (location, try task.pathContext())
    }

    /// xattr_permission, after mnt_want_write for a change: an unknown
    /// namespace is EOPNOTSUPP; trusted needs CAP_SYS_ADMIN; a user attribute
    /// belongs to files and directories only and needs read or write permission.
    private static func checkAccess(_ task: Task, _ name: String, _ target: Target,
                                    write: Bool) throws(SyscallError) {
        if write, !target.location.mount.isWritable { throw .erofs }
        guard let namespace = LinuxFile.xattrNamespaces.first(where: { name.hasPrefix($0) }) else {
            throw .eopnotsupp
        }
        switch namespace {
        case "trusted.":
            guard task.credentials.hasCapability(LinuxProcess.CAP_SYS_ADMIN) else { throw write ? .eperm : .enodata }
        case "user.":
            let inode = target.location.inode
            guard inode.type == .regular || inode.type == .directory else { throw write ? .eperm : .enodata }
            guard inode.mayAccess(target.context.credentials, want: write ? LinuxFile.mayWrite : LinuxFile.mayRead)
            else { throw .eacces }
        default: break
        }
    }
}

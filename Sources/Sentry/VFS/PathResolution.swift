/// Path walking as fs/namei.c does it: component by component from the root or
/// a starting directory, ".." never above the process root, mounts crossed on
/// the way down and up, symlinks followed (at most 40 per lookup) except a
/// final one when the caller asks not to, trailing slashes meaning "directory".
extension VirtualFilesystem {
    /// A path split for walking.
    struct SplitPath {
        var isAbsolute: Bool
        var components: [String]
        var hasTrailingSlash: Bool
    }

    static func split(_ path: String) throws(SyscallError) -> SplitPath {
        let bytes = path.utf8
        guard !bytes.isEmpty else { throw .enoent }
        guard bytes.count < LinuxFile.pathMax else { throw .enametoolong }
        let components = LinuxFile.components(of: path)
        for component in components where component.utf8.count > LinuxFile.nameMax {
            throw .enametoolong
        }
        return SplitPath(isAbsolute: bytes.first == UInt8(ascii: "/"), components: components,
                         hasTrailingSlash: bytes.last == UInt8(ascii: "/") && !components.isEmpty)
    }

    /// Resolves `path` to an existing file (VFS lock held).
    func lockedResolve(_ path: String, from start: VirtualPath, context: PathContext, followFinal: Bool,
                       symlinks: inout Int) throws(SyscallError) -> VirtualPath {
        let split = try Self.split(path)
        Task.current?.lastHostLookup = nil
        var current = split.isAbsolute ? context.root : start
        for (index, name) in split.components.enumerated() {
            let isLast = index == split.components.count - 1
            let next = try lockedStepChecked(from: current, name: name, context: context)
            if !isLast || followFinal || split.hasTrailingSlash {
                current = try lockedFollowIfSymlink(next, parent: current, context: context, symlinks: &symlinks)
            } else {
                current = next
            }
        }
        if split.hasTrailingSlash, !current.inode.isDirectory { throw .enotdir }
        return current
    }

    /// Resolves all but the last component: the directory an operation creates
    /// or removes in, the last name ("" for "/", "." and ".." as written), and
    /// whether a slash followed it.
    func lockedResolveParent(_ path: String, from start: VirtualPath, context: PathContext)
        throws(SyscallError) -> (directory: VirtualPath, name: String, hasTrailingSlash: Bool) {
        let split = try Self.split(path)
        var current = split.isAbsolute ? context.root : start
        var symlinks = 0
        for name in split.components.dropLast() {
            let next = try lockedStepChecked(from: current, name: name, context: context)
            current = try lockedFollowIfSymlink(next, parent: current, context: context, symlinks: &symlinks)
        }
        guard current.inode.isDirectory else { throw .enotdir }
        return (current, split.components.last ?? "", split.hasTrailingSlash)
    }

    /// One step down from a directory the caller may search.
    func lockedStepChecked(from directory: VirtualPath, name: String,
                           context: PathContext) throws(SyscallError) -> VirtualPath {
        guard directory.inode.isDirectory else { throw .enotdir }
        guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
        return try lockedStep(from: directory, name: name, context: context)
    }

    /// One step: ".", "..", or a child, then down into whatever is mounted there.
    func lockedStep(from directory: VirtualPath, name: String, context: PathContext) throws(SyscallError)
        -> VirtualPath {
        switch name {
        case ".": return directory
        case "..": return Self.parentForDotDot(of: directory, root: context.root)
        default:
            guard !directory.dentry.isDeleted else { throw .enoent }
            // A mount point stays what it is whatever its filesystem has under
            // it now, as on Linux: no lookup (for hostfs, a host stat) for it.
            let cached = directory.dentry.children[name].flatMap { $0.isDeleted ? nil : $0 }
            if let cached {
                let covered = VirtualPath(mount: directory.mount, dentry: cached)
                if lockedMount(on: covered) != nil { return lockedDescendMounts(covered) }
            }
            guard let child = try directory.inode.lookup(name, in: directory.dentry) else { throw .enoent }
            // The cached dentry found again has no mount on it: asked just above.
            if child === cached { return VirtualPath(mount: directory.mount, dentry: child) }
            return lockedDescendMounts(VirtualPath(mount: directory.mount, dentry: child))
        }
    }

    func lockedDescendMounts(_ path: VirtualPath) -> VirtualPath {
        var current = path
        while let mounted = lockedMount(on: current) {
            current = VirtualPath(mount: mounted, dentry: mounted.root)
        }
        return current
    }

    /// If `path` is a symlink, where it leads (relative targets from `parent`).
    func lockedFollowIfSymlink(_ path: VirtualPath, parent: VirtualPath, context: PathContext,
                               symlinks: inout Int) throws(SyscallError) -> VirtualPath {
        guard path.inode.isSymlink else { return path }
        symlinks += 1
        guard symlinks <= LinuxFile.maxSymlinkFollows else { throw .eloop }
        if let magic = try path.inode.magicLinkTarget(context: context) {
            return magic
        }
        let target = try path.inode.readLink(context: context)
        guard !target.isEmpty else { throw .enoent }
        return try lockedResolve(target, from: parent, context: context, followFinal: true, symlinks: &symlinks)
    }

    /// The starting point of a `*at` call: the working directory for AT_FDCWD,
    /// else the directory `dirfd` was opened on.
    public static func start(dirfd: Int32, table: FDTable, context: PathContext, path: String,
                             allowEmpty: Bool = false) throws(SyscallError) -> VirtualPath {
        if path.utf8.first == UInt8(ascii: "/") { return context.root }
        if dirfd == LinuxFile.atCurrentDirectory { return context.workingDirectory }
        let file = try table.get(dirfd)
        guard let location = file.location else {
            throw path.isEmpty && allowEmpty ? .ebadf : .enotdir
        }
        if path.isEmpty && allowEmpty { return location }
        guard location.inode.isDirectory else { throw .enotdir }
        return location
    }
}


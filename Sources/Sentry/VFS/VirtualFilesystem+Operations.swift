/// The path operations behind the file syscalls, each checking Linux's errors
/// in the order fs/namei.c does.
extension VirtualFilesystem {
    /// Finds an existing file (stat, chdir, *at with a path).
    public func lookup(_ path: String, from start: VirtualPath, context: PathContext,
                       followFinal: Bool = true) throws(SyscallError) -> VirtualPath {
        try VFSLock.shared.withLock { _ throws(SyscallError) -> VirtualPath in
            var symlinks = 0
            return try lockedResolve(path, from: start, context: context, followFinal: followFinal,
                                     symlinks: &symlinks)
        }
    }

    /// open(2)/openat(2)/creat(2): resolves, creates with O_CREAT, checks
    /// access and returns a new description (not yet in any FD table).
    public func open(_ path: String, from start: VirtualPath, context: PathContext, flags: UInt32,
                     mode: UInt32, umask: UInt32) throws(SyscallError) -> FileDescription {
        if flags & LinuxFile.temporaryFile == LinuxFile.temporaryFile { throw .eopnotsupp }
        let (location, created) = try VFSLock.shared.withLock { _ throws(SyscallError) -> (VirtualPath, Bool) in
            if flags & LinuxFile.create != 0, flags & LinuxFile.pathOnly == 0 {
                var symlinks = 0
                return try lockedOpenCreating(path, from: start, context: context, flags: flags,
                                              mode: mode & ~umask & LinuxFile.permissionMask, symlinks: &symlinks)
            }
            var symlinks = 0
            let follow = flags & LinuxFile.noFollow == 0
            let found = try lockedResolve(path, from: start, context: context, followFinal: follow,
                                          symlinks: &symlinks)
            return (found, false)
        }
        return try openResolved(location, flags: flags, context: context, created: created)
    }

    /// Opens a file already found (also /proc/self/fd/N reopen and the Loader's executable).
    public func openResolved(_ location: VirtualPath, flags: UInt32, context: PathContext,
                             created: Bool = false) throws(SyscallError) -> FileDescription {
        let inode = location.inode
        let type = inode.type
        if flags & LinuxFile.pathOnly != 0 {
            if flags & LinuxFile.directory != 0, type != .directory { throw .enotdir }
            return PathFile(location: location, flags: flags & (LinuxFile.pathOnly | LinuxFile.noFollow
                | LinuxFile.directory))
        }
        if type == .symlink { throw .eloop }
        if flags & LinuxFile.directory != 0, type != .directory { throw .enotdir }
        let accessMode = flags & LinuxFile.accessModeMask
        let wantsWrite = accessMode == LinuxFile.writeOnly || accessMode == LinuxFile.readWrite
        var want: UInt32 = 0
        if accessMode == LinuxFile.readOnly || accessMode == LinuxFile.readWrite { want |= LinuxFile.mayRead }
        if wantsWrite || flags & LinuxFile.truncate != 0 { want |= LinuxFile.mayWrite }
        if type == .directory, wantsWrite || flags & LinuxFile.create != 0 { throw .eisdir }
        if !created {
            if want & LinuxFile.mayWrite != 0, type == .regular || type == .directory, !location.mount.isWritable {
                throw .erofs
            }
            guard inode.mayAccess(context.credentials, want: want) else { throw .eacces }
        }
        if flags & LinuxFile.truncate != 0, type == .regular, !created {
            try inode.setAttributes(AttributeChange(size: 0))
            Inotify.notify(InotifyABI.IN_MODIFY, on: location.dentry)
        }
        let file = try inode.open(at: location, flags: flags)
        Inotify.notify(InotifyABI.IN_OPEN, on: location.dentry)
        return file
    }

    /// The O_CREAT path: an existing file is opened (following a final symlink
    /// unless O_EXCL or O_NOFOLLOW), a missing one created.
    private func lockedOpenCreating(_ path: String, from start: VirtualPath, context: PathContext, flags: UInt32,
                                    mode: UInt32, symlinks: inout Int) throws(SyscallError) -> (VirtualPath, Bool) {
        let (directory, name, trailingSlash) = try lockedResolveParent(path, from: start, context: context)
        if name.isEmpty || name == "." || name == ".." || trailingSlash { throw .eisdir }
        guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
        if let existing = try lockedChild(name, of: directory) {
            if flags & LinuxFile.exclusive != 0 { throw .eexist }
            if existing.inode.isSymlink {
                if flags & LinuxFile.noFollow != 0 { throw .eloop }
                symlinks += 1
                guard symlinks <= LinuxFile.maxSymlinkFollows else { throw .eloop }
                if let magic = try existing.inode.magicLinkTarget(context: context) { return (magic, false) }
                let target = try existing.inode.readLink(context: context)
                guard !target.isEmpty else { throw .enoent }
                return try lockedOpenCreating(target, from: directory, context: context, flags: flags, mode: mode,
                                              symlinks: &symlinks)
            }
            return (existing, false)
        }
        guard directory.mount.isWritable else { throw .erofs }
        guard !directory.dentry.isDeleted else { throw .enoent }
        guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayWrite | LinuxFile.mayExecute) else {
            throw .eacces
        }
        let dentry = try directory.inode.createFile(name, in: directory.dentry,
                                                    mode: FileType.regular.rawValue | mode,
                                                    credentials: context.credentials)
        Inotify.notify(InotifyABI.IN_CREATE, in: directory.dentry, name: name, isDirectory: false)
        return (VirtualPath(mount: directory.mount, dentry: dentry), true)
    }

    /// The child `name` of `directory` (with mounts on it descended), or nil.
    func lockedChild(_ name: String, of directory: VirtualPath) throws(SyscallError) -> VirtualPath? {
        guard !directory.dentry.isDeleted, let child = try directory.inode.lookup(name, in: directory.dentry) else {
            return nil
        }
        return lockedDescendMounts(VirtualPath(mount: directory.mount, dentry: child))
    }

    /// The common start of mkdir, symlink, link and mknod (filename_create):
    /// the parent, the new name, EEXIST, EROFS, permission.
    private func lockedPrepareCreate(_ path: String, from start: VirtualPath, context: PathContext,
                                     isDirectory: Bool) throws(SyscallError) -> (VirtualPath, String) {
        let (directory, name, trailingSlash) = try lockedResolveParent(path, from: start, context: context)
        if name.isEmpty || name == "." || name == ".." { throw .eexist }
        guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
        let existing = try lockedChild(name, of: directory)
        if existing != nil { throw .eexist }
        if trailingSlash, !isDirectory { throw .enoent }
        guard directory.mount.isWritable else { throw .erofs }
        guard !directory.dentry.isDeleted else { throw .enoent }
        guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayWrite | LinuxFile.mayExecute) else {
            throw .eacces
        }
        return (directory, name)
    }

    /// mkdir(2)/mkdirat(2); `mode` is before the umask.
    public func makeDirectory(_ path: String, from start: VirtualPath, context: PathContext, mode: UInt32,
                              umask: UInt32) throws(SyscallError) {
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (directory, name) = try lockedPrepareCreate(path, from: start, context: context, isDirectory: true)
            _ = try directory.inode.makeDirectory(name, in: directory.dentry,
                                                  mode: FileType.directory.rawValue | (mode & ~umask & 0o7777),
                                                  credentials: context.credentials)
            Inotify.notify(InotifyABI.IN_CREATE, in: directory.dentry, name: name, isDirectory: true)
        }
    }

    /// mknod(2)/mknodat(2), the type already checked by the syscall. A regular
    /// file is created; a FIFO or a socket is a Sentry inode. Device nodes
    /// need CAP_MKNOD (`mayMakeDevices`) and then get EPERM: no filesystem
    /// here stores them, which is Linux's answer for a filesystem without ->mknod.
    public func makeNode(_ path: String, from start: VirtualPath, context: PathContext, mode: UInt32, umask: UInt32,
                         mayMakeDevices: Bool) throws(SyscallError) {
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (directory, name) = try lockedPrepareCreate(path, from: start, context: context, isDirectory: false)
            let type = FileType(mode: mode & LinuxFile.typeMask)
            if type == .characterDevice || type == .blockDevice, !mayMakeDevices { throw .eperm }
            if let type, type == .fifo || type == .socket {
                let node: Inode = type == .fifo ? NamedPipeInode() : UnixSocketInode()
                try lockedAddSandboxNode(node, name: name, in: directory, mode: type.rawValue | (mode & ~umask & 0o7777),
                                         credentials: context.credentials)
                return
            }
            guard mode & LinuxFile.typeMask == 0 || type == .regular else { throw .eperm }
            _ = try directory.inode.createFile(name, in: directory.dentry,
                                               mode: FileType.regular.rawValue | (mode & ~umask & 0o7777),
                                               credentials: context.credentials)
            Inotify.notify(InotifyABI.IN_CREATE, in: directory.dentry, name: name, isDirectory: false)
        }
    }

    /// bind(2) of a unix socket to a path: `node` (S_IFSOCK, `mode` before
    /// the umask) under a new name, EEXIST if the name exists.
    public func makeSocketNode(_ node: Inode, at path: String, from start: VirtualPath, context: PathContext,
                               mode: UInt32, umask: UInt32) throws(SyscallError) {
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (directory, name) = try lockedPrepareCreate(path, from: start, context: context, isDirectory: false)
            try lockedAddSandboxNode(node, name: name, in: directory,
                                     mode: FileType.socket.rawValue | (mode & ~umask & 0o7777),
                                     credentials: context.credentials)
        }
    }

    /// A FIFO or socket node made by mknod(2) or bind(2): a sandbox object even in a host directory.
    private func lockedAddSandboxNode(_ node: Inode, name: String, in directory: VirtualPath,
                                      mode: UInt32, credentials: FileCredentials) throws(SyscallError) {
        _ = try directory.inode.addSandboxNode(node, name: name, in: directory.dentry, mode: mode,
                                               credentials: credentials)
        Inotify.notify(InotifyABI.IN_CREATE, in: directory.dentry, name: name, isDirectory: false)
    }

    /// symlink(2)/symlinkat(2).
    public func makeSymlink(target: String, at path: String, from start: VirtualPath,
                            context: PathContext) throws(SyscallError) {
        guard !target.isEmpty else { throw .enoent }
        guard target.utf8.count < LinuxFile.pathMax else { throw .enametoolong }
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (directory, name) = try lockedPrepareCreate(path, from: start, context: context, isDirectory: false)
            _ = try directory.inode.makeSymlink(name, in: directory.dentry, target: target,
                                                credentials: context.credentials)
            Inotify.notify(InotifyABI.IN_CREATE, in: directory.dentry, name: name, isDirectory: false)
        }
    }

    /// link(2)/linkat(2): `existing` was resolved by the caller (following or not).
    public func makeLink(to existing: VirtualPath, at path: String, from start: VirtualPath,
                         context: PathContext) throws(SyscallError) {
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (directory, name, trailingSlash) = try lockedResolveParent(path, from: start, context: context)
            if name.isEmpty || name == "." || name == ".." { throw .eexist }
            guard directory.mount === existing.mount else { throw .exdev }
            guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
            if try lockedChild(name, of: directory) != nil { throw .eexist }
            if trailingSlash { throw .enoent }
            guard directory.mount.isWritable else { throw .erofs }
            guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayWrite | LinuxFile.mayExecute)
            else { throw .eacces }
            if existing.inode.isDirectory { throw .eperm }
            guard !existing.dentry.isDeleted else { throw .enoent }
            _ = try directory.inode.makeLink(name, in: directory.dentry, to: existing.dentry)
            // fsnotify_link: the link count's IN_ATTRIB on the file, then IN_CREATE in the directory.
            Inotify.notify(InotifyABI.IN_ATTRIB, inode: existing.inode)
            Inotify.notify(InotifyABI.IN_CREATE, in: directory.dentry, name: name, isDirectory: false)
        }
    }

    /// unlink(2) (`directory == false`) and rmdir(2), with unlinkat's AT_REMOVEDIR.
    public func remove(_ path: String, from start: VirtualPath, context: PathContext,
                       directory wantsDirectory: Bool) throws(SyscallError) {
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (parent, name, trailingSlash) = try lockedResolveParent(path, from: start, context: context)
            if wantsDirectory {
                if name == ".." { throw .enotempty }
                if name == "." { throw .einval }
                if name.isEmpty { throw .ebusy }
            } else if name.isEmpty || name == "." || name == ".." {
                throw .eisdir
            }
            guard parent.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
            guard parent.mount.isWritable else { throw .erofs }
            guard !parent.dentry.isDeleted, let child = try parent.inode.lookup(name, in: parent.dentry) else {
                throw .enoent
            }
            let childIsDirectory = child.inode.isDirectory
            if !wantsDirectory, trailingSlash { throw childIsDirectory ? .eisdir : .enotdir }
            try lockedMayDelete(child, in: parent, context: context)
            if wantsDirectory {
                guard childIsDirectory else { throw .enotdir }
            } else if childIsDirectory {
                throw .eisdir
            }
            let onChild = lockedMount(on: VirtualPath(mount: parent.mount, dentry: child)) != nil
            if onChild || lockedIsMountpoint(child) { throw .ebusy }
            try parent.inode.remove(child, from: parent.dentry, isDirectory: wantsDirectory)
            // vfs_unlink: the link count's IN_ATTRIB (not for rmdir), IN_DELETE_SELF and
            // IN_IGNORED once no link is left, then IN_DELETE in the directory.
            if !wantsDirectory { Inotify.notify(InotifyABI.IN_ATTRIB, inode: child.inode) }
            Inotify.unlinked(child.inode)
            Inotify.notify(InotifyABI.IN_DELETE, in: parent.dentry, name: name, isDirectory: childIsDirectory)
        }
    }

    /// may_delete's permission part: write and search on the directory, then the sticky bit.
    private func lockedMayDelete(_ child: Dentry, in parent: VirtualPath, context: PathContext) throws(SyscallError) {
        let credentials = context.credentials
        guard parent.inode.mayAccess(credentials, want: LinuxFile.mayWrite | LinuxFile.mayExecute) else {
            throw .eacces
        }
        let directory = try parent.inode.attributes()
        if directory.mode & LinuxFile.sticky != 0, !credentials.ownsEverything {
            let owner = try child.inode.attributes().uid
            if credentials.uid != owner, credentials.uid != directory.uid { throw .eperm }
        }
    }

    /// rename(2)/renameat(2)/renameat2(2).
    public func rename(_ oldPath: String, from oldStart: VirtualPath, to newPath: String,
                       from newStart: VirtualPath, context: PathContext, flags: UInt32) throws(SyscallError) {
        let noReplace = flags & LinuxFile.renameNoReplace != 0
        let exchange = flags & LinuxFile.renameExchange != 0
        if flags & ~(LinuxFile.renameNoReplace | LinuxFile.renameExchange | LinuxFile.renameWhiteout) != 0 {
            throw .einval
        }
        if noReplace && exchange { throw .einval }
        if flags & LinuxFile.renameWhiteout != 0 { throw .einval }
        try VFSLock.shared.withLock { _ throws(SyscallError) in
            let (oldParent, oldName, oldSlash) = try lockedResolveParent(oldPath, from: oldStart, context: context)
            let (newParent, newName, newSlash) = try lockedResolveParent(newPath, from: newStart, context: context)
            guard oldParent.mount === newParent.mount else { throw .exdev }
            if oldName.isEmpty || oldName == "." || oldName == ".." { throw .ebusy }
            if newName.isEmpty || newName == "." || newName == ".." { throw noReplace ? .eexist : .ebusy }
            guard oldParent.mount.isWritable else { throw .erofs }
            for directory in [oldParent, newParent] {
                guard directory.inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else { throw .eacces }
            }
            guard !oldParent.dentry.isDeleted,
                  let source = try oldParent.inode.lookup(oldName, in: oldParent.dentry) else { throw .enoent }
            let target = newParent.dentry.isDeleted ? nil : try newParent.inode.lookup(newName, in: newParent.dentry)
            if exchange, target == nil { throw .enoent }
            if noReplace, target != nil { throw .eexist }
            let sourceIsDirectory = source.inode.isDirectory
            if !sourceIsDirectory {
                if oldSlash { throw .enotdir }
                if !exchange, newSlash { throw .enotdir }
            }
            if newParent.dentry.isDescendant(of: source) { throw .einval }
            // An exchange would move the target under itself: a loop in the tree.
            if let target, oldParent.dentry.isDescendant(of: target) { throw exchange ? .einval : .enotempty }
            if let target, target.inode === source.inode { return }
            try lockedMayDelete(source, in: oldParent, context: context)
            if let target {
                try lockedMayDelete(target, in: newParent, context: context)
                let targetIsDirectory = target.inode.isDirectory
                if !exchange {
                    if sourceIsDirectory, !targetIsDirectory { throw .enotdir }
                    if !sourceIsDirectory, targetIsDirectory { throw .eisdir }
                }
                if lockedIsMountpoint(target) { throw .ebusy }
            } else {
                guard newParent.inode.mayAccess(context.credentials, want: LinuxFile.mayWrite | LinuxFile.mayExecute)
                else { throw .eacces }
            }
            if lockedIsMountpoint(source) { throw .ebusy }
            try oldParent.inode.rename(source, from: oldParent.dentry, to: newName, in: newParent.dentry,
                                       replacing: target, exchange: exchange)
            notifyMove(source.inode, from: oldParent.dentry, oldName, to: newParent.dentry, newName,
                            isDirectory: sourceIsDirectory, replacing: exchange ? nil : target?.inode)
            if exchange, let target {
                notifyMove(target.inode, from: newParent.dentry, newName, to: oldParent.dentry, oldName,
                                isDirectory: target.inode.isDirectory, replacing: nil)
            }
        }
    }

    /// readlink(2)/readlinkat(2) of the final component, never followed.
    public func readLink(_ path: String, from start: VirtualPath, context: PathContext) throws(SyscallError) -> String {
        try Self.readLink(of: try lookup(path, from: start, context: context, followFinal: false), context: context)
    }

    /// The target of the symlink at `location`, read under the VFS lock as
    /// every `Inode.readLink` is (a walk follows links with the lock held).
    public static func readLink(of location: VirtualPath, context: PathContext) throws(SyscallError) -> String {
        try VFSLock.shared.withLock { _ throws(SyscallError) -> String in try location.inode.readLink(context: context) }
    }

    /// access(2)/faccessat(2): `mode` is F_OK (0) or R_OK|W_OK|X_OK.
    public func checkAccess(_ location: VirtualPath, mode: UInt32, context: PathContext) throws(SyscallError) {
        guard mode != 0 else { return }
        if mode & LinuxFile.mayWrite != 0, !location.mount.isWritable {
            let type = location.inode.type
            if type == .regular || type == .directory || type == .symlink { throw .erofs }
        }
        guard location.inode.mayAccess(context.credentials, want: mode) else { throw .eacces }
    }

    /// chmod/chown/utimes/truncate by path or FD: who may do it (EPERM/EACCES/EROFS), then the change.
    /// By FD (`file`), the open file is asked and changed, which works after its name is unlinked.
    public func setAttributes(of location: VirtualPath, change: AttributeChange, context: PathContext,
                              timesToNowOnly: Bool = false, file: FileDescription? = nil) throws(SyscallError) {
        let credentials = context.credentials
        let current: FileAttributes
        if let file { current = try file.attributes() } else { current = try location.inode.attributes() }
        let isOwner = credentials.uid == current.uid || credentials.ownsEverything
        guard location.mount.isWritable else { throw .erofs }
        var change = change
        if let mode = change.mode {
            guard isOwner else { throw .eperm }
            if mode & LinuxFile.setGroupID != 0, !credentials.isMember(of: change.gid ?? current.gid),
               !credentials.mayKeepSetGroupID {
                change.mode = mode & ~LinuxFile.setGroupID
            }
        }
        if change.uid != nil || change.gid != nil {
            let changesOwner = change.uid.map { $0 != current.uid } ?? false
            let changesGroup = change.gid.map { $0 != current.gid } ?? false
            if !credentials.mayChown {
                if changesOwner { throw .eperm }
                if changesGroup, credentials.uid != current.uid || !credentials.isMember(of: change.gid ?? 0) {
                    throw .eperm
                }
            }
            if (changesOwner || changesGroup), current.type != .directory,
               current.mode & (LinuxFile.setUserID | LinuxFile.setGroupID) != 0 {
                change.mode = (change.mode ?? current.mode) & ~LinuxFile.setUserID
                    & ~(current.mode & 0o010 != 0 ? LinuxFile.setGroupID : 0)
            }
        }
        if change.accessTime != nil || change.modificationTime != nil {
            if !isOwner {
                guard timesToNowOnly, location.inode.mayAccess(credentials, want: LinuxFile.mayWrite) else {
                    throw timesToNowOnly ? .eacces : .eperm
                }
            }
        }
        if let size = change.size {
            guard size >= 0 else { throw .einval }
            if current.type == .directory { throw .eisdir }
            guard current.type == .regular else { throw .einval }
        }
        if let file {
            try file.setAttributes(change)
        } else {
            try location.inode.setAttributes(change)
        }
        let events = Inotify.mask(of: change)
        if events != 0 { Inotify.notify(events, on: location.dentry) }
    }

    /// fsnotify_move: IN_MOVED_FROM and IN_MOVED_TO with one cookie, the
    /// replaced file's link count IN_ATTRIB, IN_MOVE_SELF, then the replaced
    /// file's IN_DELETE_SELF and IN_IGNORED if that was its last link and it is not open.
    private func notifyMove(_ moved: Inode, from oldDirectory: Dentry, _ oldName: String,
                            to newDirectory: Dentry, _ newName: String, isDirectory: Bool, replacing: Inode?) {
        let cookie = lockedNextMoveCookie()
        Inotify.notify(InotifyABI.IN_MOVED_FROM, in: oldDirectory, name: oldName, isDirectory: isDirectory,
                       cookie: cookie)
        Inotify.notify(InotifyABI.IN_MOVED_TO, in: newDirectory, name: newName, isDirectory: isDirectory,
                       cookie: cookie)
        if let replacing { Inotify.notify(InotifyABI.IN_ATTRIB, inode: replacing) }
        Inotify.notify(InotifyABI.IN_MOVE_SELF, inode: moved)
        if let replacing { Inotify.unlinked(replacing) }
    }
}

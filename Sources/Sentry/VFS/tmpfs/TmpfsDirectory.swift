import State

/// A tmpfs directory: its entries are its dentry's children.
public final class TmpfsDirectory: Inode, @unchecked Sendable { // children guarded by VFSLock.shared, attributes by Inode.lock
    override public class var savedTypeName: String { "tmpfs.Directory" }
    override public class var loadedType: FileType? { .directory }

    /// Linux's shmem BOGO_DIRENT_SIZE: a tmpfs directory's size is this much
    /// per entry, "." and ".." included, and it takes no blocks (`ls -l` and
    /// `du` of a tmpfs directory show it).
    static let bogoDirentSize: Int64 = 20

    /// Names in the directory for the size: its dentry's children counted,
    /// kept as they change, not saved but counted again after a restore
    /// (`Dentry.afterLoad`); an "entryCount" in older images is ignored.
    private var entryCount: Int64 = 0

    override public class var notSaved: Set<String> { super.notSaved.union(["entryCount"]) }

    /// After a restore: the dentry's children, counted.
    func restoreEntryCount(_ count: Int) {
        lock.withLock { _ in entryCount = Int64(count) }
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            let (entries, overflow) = entryCount.addingReportingOverflow(2)
            let (size, sizeOverflow) = Self.bogoDirentSize.multipliedReportingOverflow(by: overflow ? .max : entries)
            result.size = sizeOverflow ? .max : size
            result.blocks = 0
            return result
        }
    }

    override public func lookup(_ name: String, in directory: Dentry) throws(SyscallError) -> Dentry? {
        directory.children[name]
    }

    override public func listEntries(in directory: Dentry) throws(SyscallError) -> [DirectoryEntry] {
        directory.children.values.sorted { LinuxFile.namePrecedes($0.name, $1.name) }.compactMap { child in
            guard let type = child.inode.type else { return nil }
            return DirectoryEntry(name: child.name, inodeNumber: child.inode.inodeNumber, type: type)
        }
    }

    override public func createFile(_ name: String, in directory: Dentry, mode: UInt32,
                                    credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try add(TmpfsRegularFile(), name: name, in: directory, mode: mode, credentials: credentials)
    }

    override public func makeDirectory(_ name: String, in directory: Dentry, mode: UInt32,
                                       credentials: FileCredentials) throws(SyscallError) -> Dentry {
        let inode = TmpfsDirectory()
        let dentry = try add(inode, name: name, in: directory, mode: mode, credentials: credentials)
        let inheritsGroup = lock.withLock { _ in self.mode & LinuxFile.setGroupID != 0 }
        inode.lock.withLock { _ in
            inode.linkCount = 2
            if inheritsGroup { inode.mode |= LinuxFile.setGroupID }
        }
        lock.withLock { _ in linkCount += 1 }
        return dentry
    }

    override public func makeSymlink(_ name: String, in directory: Dentry, target: String,
                                     credentials: FileCredentials) throws(SyscallError) -> Dentry {
        let inode = TmpfsSymlink()
        inode.target = target
        return try add(inode, name: name, in: directory, mode: FileType.symlink.rawValue | 0o777,
                       credentials: credentials)
    }

    override public func addSandboxNode(_ node: Inode, name: String, in directory: Dentry, mode: UInt32,
                                        credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try add(node, name: name, in: directory, mode: mode, credentials: credentials)
    }

    override public func makeLink(_ name: String, in directory: Dentry,
                                  to existing: Dentry) throws(SyscallError) -> Dentry {
        let inode = existing.inode
        guard inode.filesystem === filesystem else { throw .exdev }
        inode.lock.withLock { _ in
            inode.linkCount += 1
            inode.changeTime = FileTime.now()
        }
        let dentry = Dentry(name: name, parent: directory, inode: inode)
        directory.children[name] = dentry
        countEntries(1)
        touch()
        return dentry
    }

    /// Adds a device node, FIFO or socket inode made by the caller (devfs, mknod).
    public func addNode(_ inode: Inode, name: String, in directory: Dentry, mode: UInt32,
                        credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try add(inode, name: name, in: directory, mode: mode, credentials: credentials)
    }

    override public func remove(_ child: Dentry, from directory: Dentry, isDirectory: Bool) throws(SyscallError) {
        if isDirectory {
            guard child.children.isEmpty else { throw .enotempty }
        }
        detach(child, from: directory)
        touch()
    }

    override public func rename(_ child: Dentry, from directory: Dentry, to newName: String, in newDirectory: Dentry,
                                replacing replaced: Dentry?, exchange: Bool) throws(SyscallError) {
        guard let newParentInode = newDirectory.inode as? TmpfsDirectory else { throw .exdev }
        if exchange, let replaced {
            let oldName = child.name
            directory.children[oldName] = replaced
            newDirectory.children[newName] = child
            replaced.name = oldName
            replaced.parent = directory
            child.name = newName
            child.parent = newDirectory
            if directory !== newDirectory {
                let childIsDirectory = child.inode.isDirectory, replacedIsDirectory = replaced.inode.isDirectory
                if childIsDirectory != replacedIsDirectory {
                    let delta: Int64 = childIsDirectory ? 1 : -1
                    newParentInode.adjustLinks(delta)
                    adjustLinks(-delta)
                }
            }
        } else {
            if let replaced {
                if replaced.inode.isDirectory, !replaced.children.isEmpty { throw .enotempty }
                newParentInode.detach(replaced, from: newDirectory)
            }
            directory.children[child.name] = nil
            child.name = newName
            child.parent = newDirectory
            newDirectory.children[newName] = child
            if directory !== newDirectory {
                countEntries(-1)
                newParentInode.countEntries(1)
                if child.inode.isDirectory {
                    adjustLinks(-1)
                    newParentInode.adjustLinks(1)
                }
            }
        }
        child.inode.lock.withLock { _ in child.inode.changeTime = FileTime.now() }
        touch()
        newParentInode.touch()
    }

    private func add(_ inode: Inode, name: String, in directory: Dentry, mode: UInt32,
                     credentials: FileCredentials) throws(SyscallError) -> Dentry {
        guard let filesystem else { throw .eio }
        // nr_inodes=: every new name but a hard link takes an inode.
        if let tmpfs = filesystem as? TmpfsFilesystem, !tmpfs.chargeInode() { throw .enospc }
        let (parentMode, parentGID) = lock.withLock { _ in (self.mode, self.gid) }
        let gid = parentMode & LinuxFile.setGroupID != 0 ? parentGID : credentials.gid
        inode.initialize(filesystem: filesystem, mode: mode, uid: credentials.uid, gid: gid)
        let dentry = Dentry(name: name, parent: directory, inode: inode)
        directory.children[name] = dentry
        countEntries(1)
        touch()
        return dentry
    }

    /// Unlinks `child`: its inode loses a link; a directory also its "." and the parent's "..".
    private func detach(_ child: Dentry, from directory: Dentry) {
        directory.children[child.name] = nil
        countEntries(-1)
        child.isDeleted = true
        let inode = child.inode
        let isDirectory = inode.isDirectory
        let unlinked = inode.lock.withLock { _ -> Bool in
            // max(0, linkCount - 1) would trap at 0 (an image may hold one) before max sees it.
            inode.linkCount = isDirectory || inode.linkCount == 0 ? 0 : inode.linkCount - 1
            inode.changeTime = FileTime.now()
            return inode.linkCount == 0
        }
        if unlinked {
            (inode.filesystem as? TmpfsFilesystem)?.dropExtendedAttributes(of: inode)
            (filesystem as? TmpfsFilesystem)?.releaseInode()
        }
        if isDirectory { adjustLinks(-1) }
    }

    func adjustLinks(_ delta: Int64) {
        // linkCount may come from an image: no trapping conversion or sum.
        lock.withLock { _ in
            let current = Int64(clamping: linkCount)
            let (sum, overflow) = current.addingReportingOverflow(delta)
            linkCount = UInt64(max(0, overflow ? current : sum))
        }
    }

    func countEntries(_ delta: Int64) {
        lock.withLock { _ in
            let (sum, overflow) = entryCount.addingReportingOverflow(delta)
            entryCount = max(0, overflow ? entryCount : sum)
        }
    }

    /// A change of entries updates mtime and ctime.
    func touch() {
        let now = FileTime.now()
        lock.withLock { _ in
            modificationTime = now
            changeTime = now
        }
    }
}

/// A tmpfs symlink.
public final class TmpfsSymlink: Inode, @unchecked Sendable { // guarded by Inode.lock
    override public class var savedTypeName: String { "tmpfs.Symlink" }
    override public class var loadedType: FileType? { .symlink }
    public var target = ""

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("target", target)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        target = try source.load("target")
        try ImageValidation.symlinkTarget(target, field: "target")
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.size = Int64(target.utf8.count)
            return result
        }
    }

    override public func readLink(context: PathContext?) throws(SyscallError) -> String { target }
}

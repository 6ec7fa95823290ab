import Glibc
import State
import Synchronization

/// A file of the rootfs. Its attributes are the host's, read when asked; its
/// identity (host device and inode) lets a lookup notice that the host file
/// under a cached name was replaced. Directories keep an Host.pathOnly FD (not
/// saved, reopened on demand after a restore).
public final class HostInode: Inode, @unchecked Sendable { // pathFD guarded by `fdLock`, the rest by VFSLock.shared
    override public class var savedTypeName: String { "hostfs.Inode" }

    public private(set) var hostDevice: UInt64 = 0
    public private(set) var hostInode: UInt64 = 0
    /// File data in VFSLock's order: taken under the VFS lock, a leaf.
    private let fdLock = Mutex<Int32>(-1)
    /// Not saved: the shared page cache of MAP_SHARED mappings of this file.
    private let shared = Mutex<SharedMemory?>(nil)

    deinit {
        let fd = fdLock.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("hostDevice", hostDevice)
        try sink.save("hostInode", hostInode)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        hostDevice = try source.load("hostDevice")
        hostInode = try source.load("hostInode")
    }

    func adopt(_ attributes: FileAttributes, filesystem: HostFilesystem) {
        self.filesystem = filesystem
        hostDevice = attributes.device
        hostInode = attributes.inodeNumber
        inodeNumber = attributes.inodeNumber
        lock.withLock { _ in
            mode = attributes.mode
            uid = attributes.uid
            gid = attributes.gid
        }
    }

    var cachedPathFD: Int32? {
        let fd = fdLock.withLock { $0 }
        return fd >= 0 ? fd : nil
    }

    /// Keeps `fd` unless another thread cached one first; returns the one kept.
    func cachePathFD(_ fd: Int32) -> Int32 {
        let kept = fdLock.withLock { current -> Int32 in
            if current >= 0 { return current }
            current = fd
            return fd
        }
        if kept != fd { close(fd) }
        return kept
    }

    func forgetPathFD() {
        let fd = fdLock.withLock { current -> Int32 in
            defer { current = -1 }
            return current
        }
        if fd >= 0 { close(fd) }
    }

    func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        shared.withLock { pages in
            if let pages { return pages }
            let made = SharedMemory(memoryFile: memoryFile)
            pages = made
            return made
        }
    }

    private var hostFilesystem: HostFilesystem? { filesystem as? HostFilesystem }

    /// The host's stat of the file behind `dentry`, not following a final symlink.
    func hostAttributes(of dentry: Dentry) throws(SyscallError) -> FileAttributes {
        guard let filesystem = hostFilesystem else { throw .eio }
        if let fd = cachedPathFD { return Host.attributes(from: try Host.stat(fd)) }
        guard let parent = dentry.parent else {
            return Host.attributes(from: try Host.stat(try filesystem.directoryFD(dentry)))
        }
        let parentFD = try filesystem.directoryFD(parent)
        return Host.attributes(from: try Host.statAt(parentFD, dentry.name))
    }

    /// The dentry naming this inode (hostfs makes one inode per name); weak
    /// because the dentry owns the inode.
    weak var currentDentry: Dentry?

    override public func didAttach(to dentry: Dentry) {
        currentDentry = dentry
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        guard let dentry = currentDentry, !dentry.isDeleted else {
            return lock.withLock { _ in baseAttributes() }
        }
        var result = try hostAttributes(of: dentry)
        result.device = filesystem?.deviceNumber ?? result.device
        lock.withLock { _ in
            mode = result.mode
            uid = result.uid
            gid = result.gid
        }
        return result
    }

    override public func mayAccess(_ credentials: FileCredentials, want: UInt32) -> Bool {
        guard let attributes = try? attributes() else { return false }
        return credentials.mayAccess(mode: attributes.mode, uid: attributes.uid, gid: attributes.gid, want: want)
    }

    override public func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        guard let filesystem = hostFilesystem, let dentry = currentDentry, let parent = dentry.parent else {
            throw .eperm
        }
        if filesystem.isReadOnly { throw .erofs }
        let parentFD = try filesystem.directoryFD(parent)
        let name = dentry.name
        if let size = change.size {
            let fd = try Host.openAt(parentFD, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK)
            defer { close(fd) }
            _ = try Host.retrying { ftruncate(fd, off_t(size)) }
        }
        if let mode = change.mode {
            // NOFOLLOW: the name was resolved before this call without the
            // VFS lock, so a rename may have put a symlink there since; a
            // following chmod would reach outside the rootfs.
            _ = try Host.retrying {
                fchmodat(parentFD, name, mode_t(mode & LinuxFile.permissionMask), AT_SYMLINK_NOFOLLOW)
            }
        }
        if change.uid != nil || change.gid != nil {
            let uid = change.uid.map { uid_t($0) } ?? uid_t.max
            let gid = change.gid.map { gid_t($0) } ?? gid_t.max
            _ = try Host.retrying { fchownat(parentFD, name, uid, gid, AT_SYMLINK_NOFOLLOW) }
        }
        if change.accessTime != nil || change.modificationTime != nil {
            let omit = timespec(tv_sec: 0, tv_nsec: Int((1 << 30) - 2))
            var times = [change.accessTime, change.modificationTime].map { time in
                time.map { timespec(tv_sec: Int($0.seconds), tv_nsec: Int($0.nanoseconds)) } ?? omit
            }
            _ = try Host.retrying { utimensat(parentFD, name, &times, AT_SYMLINK_NOFOLLOW) }
        }
    }

    override public func readLink(context: PathContext?) throws(SyscallError) -> String {
        guard let filesystem = hostFilesystem, let dentry = currentDentry, let parent = dentry.parent else {
            throw .einval
        }
        guard type == .symlink else { throw .einval }
        let parentFD = try filesystem.directoryFD(parent)
        var buffer = [CChar](repeating: 0, count: LinuxFile.pathMax)
        let count = try Host.retrying { readlinkat(parentFD, dentry.name, &buffer, buffer.count) }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        switch type {
        case .directory: return DirectoryFile(location: location, flags: flags)
        case .regular:
            guard let filesystem = hostFilesystem, let parent = location.dentry.parent else { throw .eio }
            // The lookup's VFS lock is gone: a rename may have put a FIFO or a
            // device node (a hard link to one in the rootfs) under the name
            // since. O_NONBLOCK keeps a FIFO from blocking the open (regular
            // files ignore it); anything but a regular file is refused.
            let fd = try Host.openAt(try filesystem.directoryFD(parent), location.dentry.name,
                                     HostFile.hostFlags(for: flags) | O_NONBLOCK)
            guard let status = try? Host.stat(fd), status.st_mode & S_IFMT == S_IFREG else {
                close(fd)
                throw .enxio
            }
            return HostFile(hostFD: fd, location: location, flags: flags)
        default: throw .enxio
        }
    }

    // MARK: Directory operations

    override public func lookup(_ name: String, in directory: Dentry) throws(SyscallError) -> Dentry? {
        guard let filesystem = hostFilesystem else { throw .eio }
        let cached = directory.children[name]
        let found: FileAttributes
        do throws(SyscallError) {
            found = Host.attributes(from: try Host.statAt(try filesystem.directoryFD(directory), name))
        } catch .enoent {
            if let cached, cached.inode is SyntheticDirectory { return cached }
            if let cached { forget(cached, in: directory) }
            return nil
        }
        if let cached, let inode = cached.inode as? HostInode, inode.hostInode == found.inodeNumber,
           inode.hostDevice == found.device, inode.type == found.type {
            return cached
        }
        if let cached { forget(cached, in: directory) }
        let inode = HostInode()
        inode.adopt(found, filesystem: filesystem)
        let dentry = Dentry(name: name, parent: directory, inode: inode)
        directory.children[name] = dentry
        return dentry
    }

    /// Drops a cached child the host no longer has under that name.
    private func forget(_ child: Dentry, in directory: Dentry) {
        directory.children[child.name] = nil
        child.isDeleted = true
        (child.inode as? HostInode)?.forgetPathFD()
    }

    override public func listEntries(in directory: Dentry) throws(SyscallError) -> [DirectoryEntry] {
        guard let filesystem = hostFilesystem else { throw .eio }
        let fd = try Host.openAt(try filesystem.directoryFD(directory), ".", O_RDONLY | O_DIRECTORY)
        guard let stream = fdopendir(fd) else {
            close(fd)
            throw Host.lastError
        }
        defer { closedir(stream) }
        var entries: [DirectoryEntry] = []
        var seen = Set<String>()
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var type = FileType(directoryEntryType: entry.pointee.d_type)
            if type == nil, let stat = try? Host.statAt(fd, name) {
                type = FileType(mode: UInt32(stat.st_mode))
            }
            seen.insert(name)
            entries.append(DirectoryEntry(name: name, inodeNumber: UInt64(entry.pointee.d_ino), type: type ?? .regular))
        }
        for (name, child) in directory.children where child.inode is SyntheticDirectory && !seen.contains(name) {
            entries.append(DirectoryEntry(name: name, inodeNumber: child.inode.inodeNumber, type: .directory))
        }
        return entries.sorted { $0.name < $1.name }
    }

    override public func createFile(_ name: String, in directory: Dentry, mode: UInt32,
                                    credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try create(name, in: directory, credentials: credentials) { parentFD throws(SyscallError) in
            let fd = try Host.openAt(parentFD, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, mode & 0o7777)
            close(fd)
        }
    }

    override public func makeDirectory(_ name: String, in directory: Dentry, mode: UInt32,
                                       credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try create(name, in: directory, credentials: credentials) { parentFD throws(SyscallError) in
            _ = try Host.retrying { mkdirat(parentFD, name, mode_t(mode & 0o7777)) }
        }
    }

    override public func makeSymlink(_ name: String, in directory: Dentry, target: String,
                                     credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try create(name, in: directory, credentials: credentials) { parentFD throws(SyscallError) in
            _ = try Host.retrying { symlinkat(target, parentFD, name) }
        }
    }

    override public func makeLink(_ name: String, in directory: Dentry,
                                  to existing: Dentry) throws(SyscallError) -> Dentry {
        guard let filesystem = hostFilesystem, let existingParent = existing.parent,
              existing.inode.filesystem === filesystem else { throw .exdev }
        let fromFD = try filesystem.directoryFD(existingParent)
        return try create(name, in: directory, credentials: nil) { parentFD throws(SyscallError) in
            _ = try Host.retrying { linkat(fromFD, existing.name, parentFD, name, 0) }
        }
    }

    override public func remove(_ child: Dentry, from directory: Dentry, isDirectory: Bool) throws(SyscallError) {
        guard let filesystem = hostFilesystem else { throw .eio }
        if child.inode is SyntheticDirectory { throw .ebusy }
        let parentFD = try filesystem.directoryFD(directory)
        _ = try Host.retrying { unlinkat(parentFD, child.name, isDirectory ? AT_REMOVEDIR : 0) }
        forget(child, in: directory)
    }

    override public func rename(_ child: Dentry, from directory: Dentry, to newName: String, in newDirectory: Dentry,
                                replacing replaced: Dentry?, exchange: Bool) throws(SyscallError) {
        guard let filesystem = hostFilesystem else { throw .eio }
        if exchange { throw .einval }
        let fromFD = try filesystem.directoryFD(directory)
        let toFD = try filesystem.directoryFD(newDirectory)
        _ = try Host.retrying { renameat(fromFD, child.name, toFD, newName) }
        if let replaced { forget(replaced, in: newDirectory) }
        directory.children[child.name] = nil
        child.name = newName
        child.parent = newDirectory
        newDirectory.children[newName] = child
    }

    /// Runs a host creation in `directory`, gives the new file the creator's
    /// owner when the creator is not root, and looks it up.
    private func create(_ name: String, in directory: Dentry, credentials: FileCredentials?,
                        _ make: (Int32) throws(SyscallError) -> Void) throws(SyscallError) -> Dentry {
        guard let filesystem = hostFilesystem else { throw .eio }
        if filesystem.isReadOnly { throw .erofs }
        let parentFD = try filesystem.directoryFD(directory)
        try make(parentFD)
        if let credentials, credentials.uid != 0 || credentials.gid != 0 {
            _ = fchownat(parentFD, name, credentials.uid, credentials.gid, AT_SYMLINK_NOFOLLOW)
        }
        guard let dentry = try lookup(name, in: directory) else { throw .enoent }
        return dentry
    }
}

extension FileType {
    /// From getdents' d_type; nil for DT_UNKNOWN.
    init?(directoryEntryType: UInt8) {
        switch directoryEntryType {
        case 1: self = .fifo
        case 2: self = .characterDevice
        case 4: self = .directory
        case 6: self = .blockDevice
        case 8: self = .regular
        case 10: self = .symlink
        case 12: self = .socket
        default: return nil
        }
    }
}

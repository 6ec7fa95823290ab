import CShim
import Glibc
import State
import Synchronization

/// A file of the rootfs. Its attributes are the host's, read when asked; its
/// identity (host device and inode) lets a lookup notice that the host file
/// under a cached name was replaced, and makes the names of one host file
/// (hard links) share one inode, as on Linux: its shared pages, locks and
/// FIFO are the file's, not a name's. A directory may keep a Host.pathOnly FD
/// (not saved), held while its filesystem's HostDirectoryCache keeps it and
/// reopened on demand after an eviction or a restore.
public final class HostInode: Inode, @unchecked Sendable { // directory FD guarded by `fdLock`, the rest by VFSLock.shared
    override public class var savedTypeName: String { "hostfs.Inode" }
    override public class var notSaved: Set<String> {
        super.notSaved.union([
            "fdLock", // host-only: the directory FD, reopened on use
            "lastOpened", // host-only: a restored file registers again when reopened
            "names", // weak back-references, set again when the dentries load
            "listing", // host-only: a cache of the host's listing, read again when stale
        ])
    }

    public private(set) var hostDevice: UInt64 = 0
    public private(set) var hostInode: UInt64 = 0
    /// File data in VFSLock's order: taken under the VFS lock, with no other
    /// lock that HostDirectoryCache or this inode uses held; a leaf.
    private let fdLock = Mutex<HostDescriptor?>(nil)
    /// The page cache of MAP_SHARED mappings of this file, which read and
    /// write go through too. Saved (the mappings' VMAs save the same object),
    /// so restored mappings and the file's read and write still share it;
    /// older images have none (the cache is made again at the next mapping).
    private let shared = Mutex<SharedMemory?>(nil)
    /// Not saved: the last description opened on this file, which a reopen
    /// through /proc/self/fd/N shares once the name is gone (a restored file
    /// registers again when it is reopened).
    private let lastOpened = Mutex(WeakHostFile())

    struct WeakHostFile {
        weak var file: HostFile?
    }

    /// Not saved: the host's listing of this directory as last read, sorted,
    /// with the directory's stamp then. A listing while the stamp holds is
    /// answered from it: one fstat instead of an open, the getdents and a
    /// sort (python3 lists each directory of its path at every start).
    private let listing = Mutex<(stamp: ListingStamp, entries: [DirectoryEntry])?>(nil)

    /// What changes when a name is added to, removed from or renamed in a
    /// directory: its change time, as the file cache versions a file (and
    /// its links); kept only once settled, as the file cache keeps a file.
    struct ListingStamp: Equatable {
        var identity: FileCache.Identity
        var version: FileCache.Version
        var links: UInt64

        init(_ host: Glibc.stat) {
            (identity, version) = FileCache.identityAndVersion(of: host)
            links = UInt64(host.st_nlink)
        }
    }

    /// Whether a listing is kept (tests).
    var keepsListing: Bool { listing.withLock { $0 != nil } }

    /// A FIFO of the rootfs is a Sentry pipe, made at its first open: the
    /// host's FIFO is never opened. Saved with the bytes in flight.
    private let fifo = Mutex<Pipe?>(nil)

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("hostDevice", hostDevice)
        try sink.save("hostInode", hostInode)
        try sink.save("fifo", fifo.withLock { $0 })
        try sink.save("shared", shared.withLock { $0 })
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        hostDevice = try source.load("hostDevice")
        hostInode = try source.load("hostInode")
        let pipe: Pipe? = try source.load("fifo", default: nil)
        fifo.withLock { $0 = pipe }
        let pages: SharedMemory? = try source.load("shared", default: nil)
        shared.withLock { $0 = pages }
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

    var cachedDirectory: HostDescriptor? { fdLock.withLock { $0 } }

    /// Keeps `directory` unless another thread cached one first; returns the one kept.
    func cacheDirectory(_ directory: HostDescriptor) -> HostDescriptor {
        fdLock.withLock { current in
            if let current { return current }
            current = directory
            return directory
        }
    }

    /// Drops the cached FD; it closes once no call uses it any more.
    func forgetDirectory() {
        let dropped = fdLock.withLock { current in
            defer { current = nil }
            return current
        }
        if dropped != nil { hostFilesystem?.directories.didForget(self) }
    }

    func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        shared.withLock { pages in
            if let pages { return pages }
            let made = SharedMemory(memoryFile: memoryFile)
            pages = made
            return made
        }
    }

    /// The MAP_SHARED page cache if the file has been mapped shared (nil, the
    /// usual case: read and write then reach the host file alone).
    var pageCache: SharedMemory? { shared.withLock { $0 } }

    private var hostFilesystem: HostFilesystem? { filesystem as? HostFilesystem }

    /// The host's stat of the file behind `dentry`, not following a final symlink.
    func hostAttributes(of dentry: Dentry) throws(SyscallError) -> FileAttributes {
        guard let filesystem = hostFilesystem else { throw .eio }
        if let directory = cachedDirectory {
            return try directory.withFD { fd throws(SyscallError) in Host.attributes(from: try Host.stat(fd)) }
        }
        guard let parent = dentry.parent else {
            return try filesystem.directory(dentry).withFD { fd throws(SyscallError) in
                Host.attributes(from: try Host.stat(fd))
            }
        }
        return try filesystem.directory(parent).withFD { parentFD throws(SyscallError) in
            Host.attributes(from: try Host.statAt(parentFD, dentry.name))
        }
    }

    /// The dentries naming this inode, one per hard link the sandbox has
    /// looked up; weak because the dentries own the inode. A leaf lock.
    private let names = Mutex<[WeakDentry]>([])

    struct WeakDentry {
        weak var dentry: Dentry?
    }

    override public func didAttach(to dentry: Dentry) {
        names.withLock { names in
            names.removeAll { $0.dentry == nil || $0.dentry === dentry }
            names.append(WeakDentry(dentry: dentry))
        }
    }

    /// A name of the file that is not removed, the latest first: how the
    /// host file is reached (nil once every name the sandbox knew is gone).
    var currentDentry: Dentry? {
        names.withLock { names in names.reversed().lazy.compactMap(\.dentry).first { !$0.isDeleted } }
    }

    /// Goes back in its filesystem's table of host files after a restore.
    override public func afterLoad() throws {
        try super.afterLoad()
        if type != .directory { hostFilesystem?.rememberInode(self) }
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        try attributes(found: nil)
    }

    override public func attributesAfterWalk() throws(SyscallError) -> FileAttributes {
        guard let task = Task.current, let last = task.lastHostLookup, last.inode == ObjectIdentifier(self) else {
            return try attributes(found: nil)
        }
        task.lastHostLookup = nil
        return try attributes(found: last.attributes)
    }

    /// The host's attributes of this inode: `found` by a host stat just now, or asked for.
    private func attributes(found: FileAttributes?) throws(SyscallError) -> FileAttributes {
        guard let dentry = currentDentry else {
            return lock.withLock { _ in baseAttributes() }
        }
        var result: FileAttributes
        if let found { result = found } else { result = try hostAttributes(of: dentry) }
        result.device = filesystem?.deviceNumber ?? result.device
        lock.withLock { _ in
            mode = result.mode
            uid = result.uid
            gid = result.gid
        }
        return result
    }

    /// Credentials that override permissions may do anything to a directory
    /// and all but execute to a file whatever its mode says (see
    /// FileCredentials.mayAccess): no host stat for them, which a path walk
    /// would otherwise make for every directory it searches.
    override public func mayAccess(_ credentials: FileCredentials, want: UInt32) -> Bool {
        if credentials.overridesPermissions, type == .directory || want & LinuxFile.mayExecute == 0 { return true }
        guard let attributes = try? attributes() else { return false }
        return credentials.mayAccess(mode: attributes.mode, uid: attributes.uid, gid: attributes.gid, want: want)
    }

    override public func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        guard let filesystem = hostFilesystem, let dentry = currentDentry, let parent = dentry.parent else {
            throw .eperm
        }
        if filesystem.isReadOnly { throw .erofs }
        let parentDirectory = try filesystem.directory(parent)
        defer { withExtendedLifetime(parentDirectory) {} }
        let parentFD = parentDirectory.fd
        let name = dentry.name
        if let size = change.size {
            let fd = try Host.openBeneath(parentFD, [name], flags: O_WRONLY | O_NONBLOCK)
            defer { close(fd) }
            _ = try Host.retrying { ftruncate(fd, off_t(size)) }
            pageCache?.truncate(to: UInt64(max(0, size)))
        }
        if let mode = change.mode {
            // NOFOLLOW: the name was resolved before this call without the
            // VFS lock, so a rename may have put a symlink there since; a
            // following chmod would reach outside the rootfs. (Not glibc's
            // fchmodat, which needs /proc for that: see cshim_fchmodat_nofollow.)
            _ = try Host.retrying {
                cshim_fchmodat_nofollow(parentFD, name, mode_t(mode & LinuxFile.permissionMask))
            }
        }
        if change.uid != nil || change.gid != nil {
            let uid = change.uid.map { uid_t($0) } ?? uid_t.max
            let gid = change.gid.map { gid_t($0) } ?? gid_t.max
            _ = try Host.retrying { fchownat(parentFD, name, uid, gid, AT_SYMLINK_NOFOLLOW) }
        }
        if change.accessTime != nil || change.modificationTime != nil {
            var times = [change.accessTime, change.modificationTime].map(Self.hostTime)
            _ = try Host.retrying { utimensat(parentFD, name, &times, AT_SYMLINK_NOFOLLOW) }
        }
    }

    /// A time for utimensat/futimens; nil leaves it as it is (UTIME_OMIT).
    static func hostTime(_ time: FileTime?) -> timespec {
        guard let time else { return timespec(tv_sec: 0, tv_nsec: Int(AttributeSyscalls.utimeOmit)) }
        return timespec(tv_sec: Int(truncatingIfNeeded: time.seconds), tv_nsec: Int(truncatingIfNeeded: time.nanoseconds))
    }

    override public func readLink(context: PathContext?) throws(SyscallError) -> String {
        guard let filesystem = hostFilesystem, let dentry = currentDentry, let parent = dentry.parent else {
            throw .einval
        }
        guard type == .symlink else { throw .einval }
        let parentDirectory = try filesystem.directory(parent)
        defer { withExtendedLifetime(parentDirectory) {} }
        let parentFD = parentDirectory.fd
        var buffer = [CChar](repeating: 0, count: LinuxFile.pathMax)
        let count = try Host.retrying { readlinkat(parentFD, dentry.name, &buffer, buffer.count) }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        switch type {
        case .directory: return DirectoryFile(location: location, flags: flags)
        case .regular:
            guard let filesystem = hostFilesystem, let parent = location.dentry.parent else { throw .eio }
            // Reached through a magic link after its name was removed: the name
            // may now be another file's, and the host file has no other name.
            guard !location.dentry.isDeleted else { return try reopenDeleted(at: location, flags: flags) }
            // The lookup's VFS lock is gone: a rename may have put a FIFO or a
            // device node (a hard link to one in the rootfs) under the name
            // since. O_NONBLOCK keeps a FIFO from blocking the open (regular
            // files ignore it); anything but a regular file is refused.
            let fd = try filesystem.directory(parent).withFD { parentFD throws(SyscallError) in
                try Host.openBeneath(parentFD, [location.dentry.name], flags: HostFile.hostFlags(for: flags) | O_NONBLOCK)
            }
            guard let status = try? Host.stat(fd), status.st_mode & S_IFMT == S_IFREG else {
                close(fd)
                throw .enxio
            }
            let file = HostFile(hostFD: fd, location: location, flags: flags)
            remember(file)
            return file
        case .fifo:
            let pipe = fifo.withLock { pipe in
                if let pipe { return pipe }
                let made = Pipe.makeNamed()
                pipe = made
                return made
            }
            return try NamedPipeInode.open(pipe, at: location, flags: flags)
        default: throw .enxio
        }
    }

    func remember(_ file: HostFile) {
        lastOpened.withLock { $0.file = file }
    }

    /// A new description of a file whose name was removed, as Linux's reopen
    /// through a magic link: the host file is reached through an open one.
    private func reopenDeleted(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        guard let open = lastOpened.withLock({ $0.file }) else { throw .enoent }
        let file = try open.reopenShared(at: location, flags: flags)
        remember(file)
        return file
    }

    /// After a restore: the host file already made for this deleted file by
    /// another of its descriptions, so all of them share it as before.
    func restoredGhostDescriptor() -> Int32? {
        lastOpened.withLock { $0.file }?.duplicateGhostDescriptor()
    }

    // MARK: Directory operations

    override public func lookup(_ name: String, in directory: Dentry) throws(SyscallError) -> Dentry? {
        guard let filesystem = hostFilesystem else { throw .eio }
        // One level only: the host would walk a "/" in it, through symlinks.
        guard Host.isPlainName(name) else { throw .einval }
        let cached = directory.children[name]
        if let cached, cached.inode.isSandboxNode { return cached }
        let found: FileAttributes
        do throws(SyscallError) {
            found = try filesystem.directory(directory).withFD { fd throws(SyscallError) in
                Host.attributes(from: try Host.statAt(fd, name))
            }
        } catch .enoent {
            if let cached, cached.inode is SyntheticDirectory || cached.inode is SyntheticFile { return cached }
            if let cached { forget(cached, in: directory) }
            return nil
        }
        if let cached, let inode = cached.inode as? HostInode, inode.hostInode == found.inodeNumber,
           inode.hostDevice == found.device, inode.type == found.type {
            Task.current?.lastHostLookup = (ObjectIdentifier(inode), found)
            return cached
        }
        if let cached { forget(cached, in: directory) }
        let inode: HostInode
        if found.type != .directory, let linked = filesystem.inode(for: found) {
            inode = linked
        } else {
            inode = HostInode()
            inode.adopt(found, filesystem: filesystem)
            if found.type != .directory { filesystem.rememberInode(inode) }
        }
        let dentry = Dentry(name: name, parent: directory, inode: inode)
        directory.children[name] = dentry
        Task.current?.lastHostLookup = (ObjectIdentifier(inode), found)
        return dentry
    }

    /// Drops a cached child the host no longer has under that name; its
    /// inode keeps its own attributes once no other name reaches it.
    private func forget(_ child: Dentry, in directory: Dentry) {
        directory.children[child.name] = nil
        child.isDeleted = true
        if let inode = child.inode as? HostInode, inode.currentDentry == nil { inode.keepAttributesOnceDeleted() }
    }

    /// A removed name's inode answers from its own fields from now on (and
    /// after a restore): the last attributes the host had, with no links.
    func keepAttributesOnceDeleted() {
        // A directory's cached FD still reaches it; a file keeps what its last lookup saw.
        let last = cachedDirectory.flatMap { directory in try? directory.withFD { fd throws(SyscallError) in try Host.stat(fd) } }
            .map(Host.attributes(from:))
        lock.withLock { _ in
            if let last {
                mode = last.mode
                uid = last.uid
                gid = last.gid
                accessTime = last.accessTime
                modificationTime = last.modificationTime
                changeTime = last.changeTime
            }
            linkCount = 0
        }
        forgetDirectory()
    }

    override public func listEntries(in directory: Dentry) throws(SyscallError) -> [DirectoryEntry] {
        guard let filesystem = hostFilesystem else { throw .eio }
        let descriptor = try filesystem.directory(directory)
        let stamp = ListingStamp(try descriptor.withFD { fd throws(SyscallError) in try Host.stat(fd) })
        var entries: [DirectoryEntry]
        if let kept = listing.withLock({ $0 }), kept.stamp == stamp {
            entries = kept.entries
        } else {
            entries = try descriptor.withFD { fd throws(SyscallError) in try Self.hostEntries(of: fd) }
                .sorted { LinuxFile.namePrecedes($0.name, $1.name) }
            let listed = entries
            listing.withLock { $0 = stamp.version.isSettled ? (stamp, listed) : nil }
        }
        // Sandbox nodes (sockets bound here, mount points made by the Sentry) the host does not list.
        if directory.children.values.contains(where: { !($0.inode is HostInode) }) {
            let listed = Set(entries.map(\.name))
            for (name, child) in directory.children where !(child.inode is HostInode) && !listed.contains(name) {
                guard let type = child.inode.type else { continue }
                entries.append(DirectoryEntry(name: name, inodeNumber: child.inode.inodeNumber, type: type))
            }
            entries.sort { LinuxFile.namePrecedes($0.name, $1.name) }
        }
        return entries
    }

    /// The host's entries of the directory `directoryFD` reaches, unsorted.
    private static func hostEntries(of directoryFD: Int32) throws(SyscallError) -> [DirectoryEntry] {
        let fd = try Host.openAt(directoryFD, ".", O_RDONLY | O_DIRECTORY)
        guard let stream = fdopendir(fd) else {
            close(fd)
            throw Host.lastError
        }
        defer { closedir(stream) }
        var entries: [DirectoryEntry] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var type = FileType(directoryEntryType: entry.pointee.d_type)
            if type == nil, let stat = try? Host.statAt(fd, name) {
                type = FileType(mode: UInt32(stat.st_mode))
            }
            entries.append(DirectoryEntry(name: name, inodeNumber: UInt64(entry.pointee.d_ino), type: type ?? .regular))
        }
        return entries
    }

    override public func createFile(_ name: String, in directory: Dentry, mode: UInt32,
                                    credentials: FileCredentials) throws(SyscallError) -> Dentry {
        try create(name, in: directory, credentials: credentials) { parentFD throws(SyscallError) in
            let fd = try Host.openBeneath(parentFD, [name], flags: O_CREAT | O_EXCL | O_WRONLY, mode: mode & 0o7777)
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

    /// Set in the inode numbers of nodes only the sandbox has, so none equals
    /// a host file's (whose numbers this filesystem shows) and fools a
    /// hard-link check (tar, cp -a, du).
    static let sandboxOnlyInodeBit: UInt64 = 1 << 62

    /// The FIFO or socket exists only in the sandbox: a child of the
    /// directory's dentry that lookups find before asking the host.
    override public func addSandboxNode(_ inode: Inode, name: String, in directory: Dentry, mode: UInt32,
                                        credentials: FileCredentials) throws(SyscallError) -> Dentry {
        guard let filesystem = hostFilesystem else { throw .eio }
        if filesystem.isReadOnly { throw .erofs }
        inode.initialize(filesystem: filesystem, mode: mode, uid: credentials.uid, gid: credentials.gid)
        inode.inodeNumber |= Self.sandboxOnlyInodeBit
        let dentry = Dentry(name: name, parent: directory, inode: inode)
        directory.children[name] = dentry
        return dentry
    }

    override public func makeLink(_ name: String, in directory: Dentry,
                                  to existing: Dentry) throws(SyscallError) -> Dentry {
        guard let filesystem = hostFilesystem, let existingParent = existing.parent,
              existing.inode.filesystem === filesystem else { throw .exdev }
        let fromDirectory = try filesystem.directory(existingParent)
        defer { withExtendedLifetime(fromDirectory) {} }
        let fromFD = fromDirectory.fd
        return try create(name, in: directory, credentials: nil) { parentFD throws(SyscallError) in
            _ = try Host.retrying { linkat(fromFD, existing.name, parentFD, name, 0) }
        }
    }

    override public func remove(_ child: Dentry, from directory: Dentry, isDirectory: Bool) throws(SyscallError) {
        guard let filesystem = hostFilesystem else { throw .eio }
        if child.inode is SyntheticDirectory || child.inode is SyntheticFile { throw .ebusy }
        if child.inode.isSandboxNode {
            let node = child.inode
            directory.children[child.name] = nil
            child.isDeleted = true
            node.lock.withLock { _ in
                node.linkCount = 0
                node.changeTime = FileTime.now()
            }
            return
        }
        let parentDirectory = try filesystem.directory(directory)
        defer { withExtendedLifetime(parentDirectory) {} }
        let parentFD = parentDirectory.fd
        _ = try Host.retrying { unlinkat(parentFD, child.name, isDirectory ? AT_REMOVEDIR : 0) }
        forget(child, in: directory)
    }

    override public func rename(_ child: Dentry, from directory: Dentry, to newName: String, in newDirectory: Dentry,
                                replacing replaced: Dentry?, exchange: Bool) throws(SyscallError) {
        guard let filesystem = hostFilesystem else { throw .eio }
        if exchange { throw .einval }
        // A FIFO or socket on a host mount is the sandbox's alone: mv copies it (mkfifo, unlink).
        if child.inode.isSandboxNode || replaced?.inode.isSandboxNode == true { throw .exdev }
        let fromDirectory = try filesystem.directory(directory)
        defer { withExtendedLifetime(fromDirectory) {} }
        let fromFD = fromDirectory.fd
        let toDirectory = try filesystem.directory(newDirectory)
        defer { withExtendedLifetime(toDirectory) {} }
        let toFD = toDirectory.fd
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
        let parentDirectory = try filesystem.directory(directory)
        defer { withExtendedLifetime(parentDirectory) {} }
        let parentFD = parentDirectory.fd
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

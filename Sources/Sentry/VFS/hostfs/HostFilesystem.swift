import Glibc
import State
import Synchronization

/// The bundle's rootfs on the host, seen through the Sentry. Every host access
/// is an `*at` call on a directory FD opened component by component with
/// O_NOFOLLOW beneath the rootfs FD, and the VFS resolves symlinks itself
/// inside the sandbox, so no symlink on the host can lead outside the rootfs.
///
/// Saved: the host path it was attached to (a hint) and the read-only flag.
/// A restore re-attaches it (`VirtualFilesystem.reattachHostFilesystems`),
/// then reopens the files that were open by their paths.
public final class HostFilesystem: Filesystem, @unchecked Sendable { // host state guarded by `hostLock`
    override public class var savedTypeName: String { "hostfs.Filesystem" }
    override public class var notSaved: Set<String> {
        super.notSaved.union([
            "hostLock", // a lock
            "rootFD", // host-only: reopened from hostPath after load
            "directories", // host-only: a cache of directory FDs
            "restoredFiles", // host-only: loaded files waiting to be reopened
            "inodes", // a cache of weak references, filled again by the loaded inodes' afterLoad
        ])
    }
    override public var typeName: String { "9p" }

    public private(set) var hostPath = ""
    /// For a single-file bind mount (/etc/resolv.conf): the one name of the
    /// directory at `hostPath` the container sees; its dentry is the mount's
    /// root, and nothing else of the directory is reachable.
    public private(set) var singleFileName: String?
    /// A leaf (see VFSLock).
    private let hostLock = Mutex(())
    /// Host.pathOnly FD of the rootfs directory; nil until attached.
    private var rootFD: HostDescriptor?
    /// Not saved: the FDs of the directories below the root that lookups use.
    let directories = HostDirectoryCache()
    /// Files loaded from an image, waiting to be reopened.
    private var restoredFiles: [HostFile] = []
    /// The inodes of host files other than directories by host identity,
    /// so a hard link's name finds the inode another name has. A leaf lock.
    private let inodes = Mutex(InodeTable())

    struct InodeTable {
        var byIdentity: [FileCache.Identity: WeakHostInode] = [:]
        /// The count past which entries whose inode is gone are dropped.
        var pruneAt = 1024
    }

    struct WeakHostInode {
        weak var inode: HostInode?
    }

    /// A hostfs over `path`, its root dentry describing the directory.
    public static func make(hostPath path: String, readOnly: Bool, deviceNumber: UInt64) throws(SyscallError)
        -> HostFilesystem {
        let filesystem = HostFilesystem()
        filesystem.deviceNumber = deviceNumber
        filesystem.isReadOnly = readOnly
        try filesystem.attach(hostPath: path)
        let attributes = try filesystem.rootDirectory().withFD { fd throws(SyscallError) in
            Host.attributes(from: try Host.stat(fd))
        }
        guard attributes.type == .directory else { throw .enotdir }
        let inode = HostInode()
        inode.adopt(attributes, filesystem: filesystem)
        filesystem.root = Dentry(name: "", parent: nil, inode: inode)
        return filesystem
    }

    /// The inode another name of the host file `found` describes has, if
    /// that name still reaches the same host file (the host reuses the
    /// numbers of removed files).
    func inode(for found: FileAttributes) -> HostInode? {
        let identity = FileCache.Identity(device: found.device, inode: found.inodeNumber)
        guard let inode = inodes.withLock({ $0.byIdentity[identity]?.inode }), inode.type == found.type,
              let name = inode.currentDentry, let current = try? inode.hostAttributes(of: name),
              current.device == found.device, current.inodeNumber == found.inodeNumber else { return nil }
        return inode
    }

    /// Notes `inode` as its host file's, for the file's other names.
    func rememberInode(_ inode: HostInode) {
        let identity = FileCache.Identity(device: inode.hostDevice, inode: inode.hostInode)
        inodes.withLock { table in
            table.byIdentity[identity] = WeakHostInode(inode: inode)
            if table.byIdentity.count > table.pruneAt {
                table.byIdentity = table.byIdentity.filter { $0.value.inode != nil }
                table.pruneAt = max(1024, table.byIdentity.count * 2)
            }
        }
    }

    /// A hostfs showing the one host file at `path`, and the dentry to mount:
    /// the file, looked up in a hostfs over its directory.
    public static func makeSingleFile(hostPath path: String, readOnly: Bool, deviceNumber: UInt64)
        throws(SyscallError) -> (filesystem: HostFilesystem, root: Dentry) {
        let (directory, name) = splitFilePath(path)
        guard !name.isEmpty, name != ".", name != ".." else { throw .einval }
        let filesystem = try make(hostPath: directory, readOnly: readOnly, deviceNumber: deviceNumber)
        filesystem.singleFileName = name
        let file = try VFSLock.shared.withLock { _ throws(SyscallError) -> Dentry in
            guard let dentry = try filesystem.root.inode.lookup(name, in: filesystem.root) else { throw .enoent }
            return dentry
        }
        guard file.inode.type == .regular else { throw file.inode.isDirectory ? .eisdir : .einval }
        return (filesystem, file)
    }

    /// "/a/b/c" as ("/a/b", "c"); a name without a directory is in the current one.
    static func splitFilePath(_ path: String) -> (directory: String, name: String) {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", trimmed) }
        let directory = String(trimmed[..<slash])
        return (directory.isEmpty ? "/" : directory, String(trimmed[trimmed.index(after: slash)...]))
    }

    /// The host path a restoring bundle must bind-mount for this filesystem
    /// to be attached again: its directory, or its one file.
    public var mountSource: String {
        guard let singleFileName else { return hostPath }
        return (hostPath == "/" ? "" : hostPath) + "/" + singleFileName
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("hostPath", hostPath)
        try sink.save("singleFileName", singleFileName)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        hostPath = try source.load("hostPath")
        let name: String? = try source.load("singleFileName", default: nil)
        if let name {
            guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\0") else {
                throw StateError.invalidValue("single-file host mount of \(name.debugDescription)")
            }
        }
        singleFileName = name
        try ImageValidation.absolutePath(hostPath, field: "hostPath")
    }

    /// Opens the rootfs directory; a restore calls it with the new bundle's rootfs.
    public func attach(hostPath path: String) throws(SyscallError) {
        let root = HostDescriptor(try Host.openAt(AT_FDCWD, path, Host.pathOnly | O_DIRECTORY))
        hostLock.withLock { _ in
            rootFD = root
            hostPath = path
        }
    }

    /// Lets go of the root's and the cached directories' host FDs, for a
    /// kernel that is thrown away (Kernel.discard).
    func detach() {
        hostLock.withLock { _ in rootFD = nil }
        directories.forgetAll()
    }

    func rootDirectory() throws(SyscallError) -> HostDescriptor {
        guard let root = hostLock.withLock({ _ in rootFD }) else { throw .eio }
        return root
    }

    func registerRestored(_ file: HostFile) {
        hostLock.withLock { _ in restoredFiles.append(file) }
    }

    /// Reopens every file loaded from an image; the first that is gone or
    /// changed fails the restore with its path and why.
    public func reopenRestoredFiles() throws {
        let files = hostLock.withLock { _ in
            defer { restoredFiles = [] }
            return restoredFiles
        }
        for file in files { try file.reopen() }
    }

    /// The Host.pathOnly FD of the directory at `dentry`, cached on its inode
    /// (within `directories`' bound). A directory whose FD is not cached is
    /// opened again by name from its nearest ancestor that has one (the root
    /// at worst), one component at a time, as a restore reopens a file
    /// (`openBeneath`), and each directory on the way is cached. Iterative: a
    /// directory may be tens of thousands of levels deep.
    func directory(_ dentry: Dentry) throws(SyscallError) -> HostDescriptor {
        var missing: [(name: String, inode: HostInode)] = []
        var current = dentry
        var start: HostDescriptor
        while true {
            guard let parent = current.parent else {
                start = try rootDirectory()
                break
            }
            guard let inode = current.inode as? HostInode else { throw .enoent }
            if let cached = inode.cachedDirectory {
                directories.touch(inode)
                start = cached
                break
            }
            missing.append((current.name, inode))
            current = parent
        }
        for (name, inode) in missing.reversed() {
            let parent = start
            let opened = try parent.withFD { fd throws(SyscallError) in try Self.openDirectory(name, in: fd) }
            start = inode.cacheDirectory(HostDescriptor(opened))
            directories.didCache(inode)
        }
        return start
    }

    /// Opens the directory `name` in `parent` without following a symlink
    /// there: every host directory the Sentry opens beneath a mount's root
    /// goes through this one step.
    static func openDirectory(_ name: String, in parent: Int32) throws(SyscallError) -> Int32 {
        guard !name.isEmpty, name != ".", name != "..", !name.utf8.contains(UInt8(ascii: "/")) else {
            throw .enoent
        }
        return try Host.openBeneath(parent, [name], flags: Host.pathOnly | O_DIRECTORY)
    }

    /// Opens `components` beneath the root without following links: how a
    /// restore finds a file again.
    func openBeneath(_ components: [String], flags: Int32) throws(SyscallError) -> Int32 {
        try rootDirectory().withFD { root throws(SyscallError) in
            try Host.openBeneath(root, components, flags: flags)
        }
    }

    override public func statistics() throws(SyscallError) -> FilesystemStatistics {
        var host = statvfs()
        _ = try rootDirectory().withFD { fd throws(SyscallError) in try Host.retrying { fstatvfs(fd, &host) } }
        let blockSize = Int64(host.f_bsize)
        var result = FilesystemStatistics(type: 0x0102_1997, blockSize: blockSize, blocks: UInt64(host.f_blocks),
                                          freeBlocks: UInt64(host.f_bfree), availableBlocks: UInt64(host.f_bavail),
                                          files: UInt64(host.f_files), freeFiles: UInt64(host.f_ffree),
                                          nameLength: Int64(host.f_namemax))
        result.flags = isReadOnly ? 1 : 0
        return result
    }
}

extension VirtualFilesystem {
    /// After a restore: attaches every hostfs to its host directory (`relocate`
    /// maps the saved path to this host's, e.g. the new bundle's rootfs) and
    /// reopens the files that were open.
    /// `relocate` maps each host mount (its path in the container, the host
    /// path it had: a directory, or the one file of a single-file mount) to
    /// the host path to use now, or to nil to refuse it: an image names host
    /// paths, and only the restoring bundle may say which of them the
    /// container gets.
    /// Every host filesystem lets go of its host FDs (Kernel.discard).
    func detachHostFilesystems() {
        let filesystems = VFSLock.shared.withLock { _ in mounts.compactMap { $0.filesystem as? HostFilesystem } }
        for filesystem in filesystems { filesystem.detach() }
    }

    public func reattachHostFilesystems(relocate: (_ mountTarget: String, _ savedPath: String) -> String? = { $1 }) throws {
        // A single-file filesystem is mounted only at its file: VirtualFilesystem.afterLoad checked that.
        let hostMounts = VFSLock.shared.withLock { _ in
            mounts.compactMap { mount in (mount.filesystem as? HostFilesystem).map { (mount.target, $0) } }
        }
        var seen = Set<ObjectIdentifier>()
        let filesystems = hostMounts.filter { seen.insert(ObjectIdentifier($0.1)).inserted }
        for (mountTarget, filesystem) in filesystems {
            guard var target = relocate(mountTarget, filesystem.mountSource) else {
                let what = filesystem.singleFileName == nil ? "directory" : "file"
                throw HostReopenError(path: mountTarget, reason: "the image has a bind mount of \(filesystem.mountSource) "
                    + "here, but the bundle's spec does not mount it: the bundle's spec mounts no host \(what) at \(mountTarget)")
            }
            if let name = filesystem.singleFileName {
                let (directory, targetName) = HostFilesystem.splitFilePath(target)
                guard targetName == name else {
                    throw HostReopenError(path: target, reason: "the image mounted a file named \(name)")
                }
                target = directory
            }
            do {
                try filesystem.attach(hostPath: target)
            } catch {
                throw HostReopenError(path: target, reason: "cannot open the rootfs: \(String(cString: strerror(error.rawValue)))")
            }
        }
        for (_, filesystem) in filesystems { try filesystem.reopenRestoredFiles() }
    }
}

/// A host file that was open at the checkpoint cannot be opened again as it was.
public struct HostReopenError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String { "restore: \(path): \(reason)" }
}

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
    override public var typeName: String { "9p" }

    public private(set) var hostPath = ""
    /// A leaf (see VFSLock).
    private let hostLock = Mutex(())
    /// Host.pathOnly FD of the rootfs directory; -1 until attached.
    private var rootFD: Int32 = -1
    /// Files loaded from an image, waiting to be reopened.
    private var restoredFiles: [HostFile] = []

    /// A hostfs over `path`, its root dentry describing the directory.
    public static func make(hostPath path: String, readOnly: Bool, deviceNumber: UInt64) throws(SyscallError)
        -> HostFilesystem {
        let filesystem = HostFilesystem()
        filesystem.deviceNumber = deviceNumber
        filesystem.isReadOnly = readOnly
        try filesystem.attach(hostPath: path)
        let attributes = Host.attributes(from: try Host.stat(filesystem.rootFD))
        guard attributes.type == .directory else { throw .enotdir }
        let inode = HostInode()
        inode.adopt(attributes, filesystem: filesystem)
        filesystem.root = Dentry(name: "", parent: nil, inode: inode)
        return filesystem
    }

    deinit {
        if rootFD >= 0 { close(rootFD) }
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("hostPath", hostPath)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        hostPath = try source.load("hostPath")
    }

    /// Opens the rootfs directory; a restore calls it with the new bundle's rootfs.
    public func attach(hostPath path: String) throws(SyscallError) {
        let fd = try Host.openAt(AT_FDCWD, path, Host.pathOnly | O_DIRECTORY)
        hostLock.withLock { _ in
            if rootFD >= 0 { close(rootFD) }
            rootFD = fd
            hostPath = path
        }
    }

    var rootDescriptor: Int32 { hostLock.withLock { _ in rootFD } }

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

    /// An Host.pathOnly FD for the directory at `dentry`, cached on its inode.
    func directoryFD(_ dentry: Dentry) throws(SyscallError) -> Int32 {
        guard let parent = dentry.parent else {
            let fd = rootDescriptor
            guard fd >= 0 else { throw .eio }
            return fd
        }
        guard let inode = dentry.inode as? HostInode else { throw .enoent }
        if let cached = inode.cachedPathFD { return cached }
        let parentFD = try directoryFD(parent)
        let fd = try Host.openAt(parentFD, dentry.name, Host.pathOnly | O_NOFOLLOW | O_DIRECTORY)
        return inode.cachePathFD(fd)
    }

    /// Opens `components` below the root, each step with O_NOFOLLOW: how a
    /// restore finds a file again.
    func openBeneath(_ components: [String], flags: Int32) throws(SyscallError) -> Int32 {
        var current = rootDescriptor
        guard current >= 0 else { throw .eio }
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }
        for name in components.dropLast() {
            current = try Host.openAt(current, name, Host.pathOnly | O_NOFOLLOW | O_DIRECTORY)
            opened.append(current)
        }
        return try Host.openAt(current, components.last ?? ".", flags | O_NOFOLLOW)
    }

    override public func statistics() throws(SyscallError) -> FilesystemStatistics {
        var host = statvfs()
        let fd = rootDescriptor
        _ = try Host.retrying { fstatvfs(fd, &host) }
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
    /// `relocate` maps each saved host path to the one to use now, or to nil
    /// to refuse it: an image names host directories, and only the restoring
    /// bundle may say which of them the container gets.
    public func reattachHostFilesystems(relocate: (String) -> String? = { $0 }) throws {
        let filesystems = VFSLock.shared.withLock { _ in mounts.compactMap { $0.filesystem as? HostFilesystem } }
        for filesystem in filesystems {
            guard let target = relocate(filesystem.hostPath) else {
                throw HostReopenError(path: filesystem.hostPath,
                                      reason: "the image mounts this host directory but the bundle's spec does not")
            }
            do {
                try filesystem.attach(hostPath: target)
            } catch {
                throw HostReopenError(path: target, reason: "cannot open the rootfs: \(String(cString: strerror(error.rawValue)))")
            }
        }
        for filesystem in filesystems { try filesystem.reopenRestoredFiles() }
    }
}

/// A host file that was open at the checkpoint cannot be opened again as it was.
public struct HostReopenError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String

    public var description: String { "restore: \(path): \(reason)" }
}

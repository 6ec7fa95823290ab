import State
import Synchronization

/// The kernel's view of files: the mount tree and the path operations over it.
/// One per kernel. Every method that walks or changes the tree takes
/// `VFSLock.shared`; methods named `locked…` expect it held.
public final class VirtualFilesystem: Savable, @unchecked Sendable { // guarded by VFSLock.shared
    public static let savedTypeName = "vfs.VirtualFilesystem"
    public static let notSaved: Set<String> = [
        "mountIndex", // an index of mounts, rebuilt after load
    ]

    public private(set) var rootMount: Mount?
    public private(set) var mounts: [Mount] = []
    private var nextAnonymousMinor: UInt32 = 1
    /// The internal tmpfs of memfd_create's files, outside the tree (Memfd.swift); nil until the first.
    var memfdMount: Mount?
    /// fsnotify_get_cookie's counter: the last cookie tying an IN_MOVED_FROM
    /// to its IN_MOVED_TO. Saved, so a rename after a restore does not repeat
    /// the cookie of one still queued.
    private var lastMoveCookie: UInt32 = 0
    /// Mounts by (parent mount, mountpoint dentry); rebuilt after load.
    private var mountIndex: [MountKey: Mount] = [:]

    private struct MountKey: Hashable {
        let mount: ObjectIdentifier
        let dentry: ObjectIdentifier
    }

    public required init() {}

    /// The next rename cookie (VFS lock held); it wraps, as Linux's atomic counter does.
    func lockedNextMoveCookie() -> UInt32 {
        lastMoveCookie &+= 1
        return lastMoveCookie
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("rootMount", rootMount)
        try sink.save("mounts", mounts)
        try sink.save("nextAnonymousMinor", nextAnonymousMinor)
        try sink.save("memfdMount", memfdMount)
        try sink.save("lastMoveCookie", lastMoveCookie)
    }

    public func load(from source: inout LoadSource) throws {
        rootMount = try source.load("rootMount")
        mounts = try source.load("mounts")
        nextAnonymousMinor = try source.load("nextAnonymousMinor")
        memfdMount = try source.load("memfdMount", default: nil)
        // Images from before it was saved: counting from 0 as those kernels did.
        lastMoveCookie = try source.load("lastMoveCookie", default: 0)
    }

    /// The mount tree is a tree rooted at `rootMount`: every other mount has
    /// a parent mount of the tree and a mountpoint, each mount's root is its
    /// filesystem's (or a single-file mount's one file), and its mountpoint is beneath its parent's root.
    public func afterLoad() throws {
        guard let rootMount, rootMount.parent == nil, mounts.contains(where: { $0 === rootMount }) else {
            throw StateError.invalidValue("the root mount is missing from the mount list or has a parent",
                                          field: "mounts")
        }
        let known = Set(mounts.map(ObjectIdentifier.init))
        for (index, mount) in mounts.enumerated() {
            let field = "mounts[\(index)]"
            // A single-file bind mount's root is its one file, never the directory beside it.
            let expectedRoot = (mount.filesystem as? HostFilesystem)?.singleFileName
                .map { mount.filesystem.root.children[$0] } ?? mount.filesystem.root
            try ImageValidation.require(mount.root === expectedRoot, field: field,
                                        "the mount's root is not its filesystem's (or its single file)")
            guard mount !== rootMount else { continue }
            guard let parent = mount.parent, known.contains(ObjectIdentifier(parent)),
                  let mountpoint = mount.mountpoint else {
                throw StateError.invalidValue("a mount without a parent mount or mountpoint in the tree", field: field)
            }
            try VirtualPath(mount: parent, dentry: mountpoint).validateLoaded(field: field + ".mountpoint")
            var ancestor: Mount? = parent
            var steps = 0
            while let step = ancestor, step !== rootMount {
                steps += 1
                try ImageValidation.require(steps <= mounts.count, field: field, "the mount parents form a cycle")
                ancestor = step.parent
            }
        }
        mountIndex = [:]
        for mount in mounts {
            if let parent = mount.parent, let mountpoint = mount.mountpoint {
                mountIndex[MountKey(mount: ObjectIdentifier(parent), dentry: ObjectIdentifier(mountpoint))] = mount
            }
        }
    }

    /// A device number for a filesystem with no device (major 0), as Linux's get_anon_bdev.
    public func allocateDeviceNumber() -> UInt64 {
        VFSLock.shared.withLock { _ in
            defer { nextAnonymousMinor += 1 }
            return DeviceNumber.make(major: 0, minor: nextAnonymousMinor)
        }
    }

    /// Makes `filesystem` the root of the tree.
    @discardableResult
    public func mountRoot(_ filesystem: Filesystem, readOnly: Bool = false) -> VirtualPath {
        VFSLock.shared.withLock { _ in
            let mount = Mount(filesystem: filesystem, parent: nil, mountpoint: nil, target: "/", readOnly: readOnly)
            rootMount = mount
            mounts = [mount]
            mountIndex = [:]
            return VirtualPath(mount: mount, dentry: mount.root)
        }
    }

    /// The root of the tree, for a new process's FS context.
    public func rootPath() throws(SyscallError) -> VirtualPath {
        guard let mount = VFSLock.shared.withLock({ _ in rootMount }) else { throw .enoent }
        return VirtualPath(mount: mount, dentry: mount.root)
    }

    /// Mounts `filesystem` at absolute `target`, as the Loader does for the
    /// spec's mounts, showing it from `root` (default: its root; a
    /// single-file bind mount shows one file). A missing mountpoint is
    /// created as a synthetic directory or file (the rootfs on the host is
    /// not touched), as runsc does; a file goes only on a file and a
    /// directory only on a directory (ENOTDIR), as Linux's graft_tree wants.
    @discardableResult
    public func mount(_ filesystem: Filesystem, at target: String, root: Dentry? = nil, readOnly: Bool = false,
                      flags: UInt64 = 0) throws(SyscallError) -> Mount {
        let mountRoot = root ?? filesystem.root
        let isDirectory = mountRoot.inode.isDirectory
        return try VFSLock.shared.withLock { _ throws(SyscallError) -> Mount in
            guard let rootMount else { throw .enoent }
            let root = VirtualPath(mount: rootMount, dentry: rootMount.root)
            let context = PathContext(root: root, workingDirectory: root, credentials: .root)
            var current = root
            var symlinks = 0
            let names = LinuxFile.components(of: target)
            for (index, name) in names.enumerated() {
                guard current.inode.isDirectory else { throw .enotdir }
                let next: VirtualPath
                do throws(SyscallError) {
                    next = try lockedStep(from: current, name: name, context: context)
                } catch .enoent {
                    let isLast = index == names.count - 1
                    let inode: Inode = isLast && !isDirectory ? SyntheticFile() : SyntheticDirectory()
                    inode.initialize(filesystem: current.dentry.inode.filesystem ?? filesystem,
                                     mode: isLast && !isDirectory ? FileType.regular.rawValue | 0o644
                                         : FileType.directory.rawValue | 0o755, uid: 0, gid: 0)
                    let dentry = Dentry(name: name, parent: current.dentry, inode: inode)
                    current.dentry.children[name] = dentry
                    next = VirtualPath(mount: current.mount, dentry: dentry)
                }
                current = try lockedFollowIfSymlink(next, parent: current, context: context,
                                                    symlinks: &symlinks)
            }
            guard current.inode.isDirectory == isDirectory else { throw .enotdir }
            let mount = Mount(filesystem: filesystem, parent: current.mount, mountpoint: current.dentry,
                              target: target, readOnly: readOnly)
            mount.root = mountRoot
            mount.flags = flags
            mounts.append(mount)
            mountIndex[MountKey(mount: ObjectIdentifier(current.mount), dentry: ObjectIdentifier(current.dentry))]
                = mount
            return mount
        }
    }

    /// The mount stacked on `path`, if any (VFS lock held).
    func lockedMount(on path: VirtualPath) -> Mount? {
        mountIndex[MountKey(mount: ObjectIdentifier(path.mount), dentry: ObjectIdentifier(path.dentry))]
    }

    /// Whether some mount sits on `dentry` (unlink and rename refuse with EBUSY).
    func lockedIsMountpoint(_ dentry: Dentry) -> Bool {
        mounts.contains { $0.mountpoint === dentry }
    }

    /// Where ".." leads from `path`: up through mount roots, never above `root`.
    public static func parentForDotDot(of path: VirtualPath, root: VirtualPath? = nil) -> VirtualPath {
        var current = path
        if let root, current == root { return current }
        while current.dentry === current.mount.root {
            guard let parent = current.mount.parent, let mountpoint = current.mount.mountpoint else { return current }
            current = VirtualPath(mount: parent, dentry: mountpoint)
            if let root, current == root { return current }
        }
        guard let parentDentry = current.dentry.parent else { return current }
        return VirtualPath(mount: current.mount, dentry: parentDentry)
    }

    /// The absolute path of `path` seen from `root` (getcwd, /proc/self/fd),
    /// or nil when `path` is not below `root`.
    public static func pathString(of path: VirtualPath, root: VirtualPath) -> String? {
        VFSLock.shared.withLock { _ in lockedPathString(of: path, root: root) }
    }

    /// The path of `path` from the top of its mount tree (for /proc/self/maps).
    /// Takes the VFS lock: never call it from code that runs under it (an
    /// inode's lookup, listEntries, readLink); those use `lockedAbsolutePath`.
    public static func absolutePath(of path: VirtualPath) -> String? {
        VFSLock.shared.withLock { _ in lockedAbsolutePath(of: path) }
    }

    static func lockedAbsolutePath(of path: VirtualPath) -> String? {
        var top = path.mount
        while let parent = top.parent { top = parent }
        let name = lockedPathString(of: path, root: VirtualPath(mount: top, dentry: top.root))
        return path.dentry.isDeleted ? name.map { $0 + " (deleted)" } : name
    }

    static func lockedPathString(of path: VirtualPath, root: VirtualPath) -> String? {
        var names: [String] = []
        var current = path
        while !(current == root) {
            if current.dentry === current.mount.root {
                guard let parent = current.mount.parent, let mountpoint = current.mount.mountpoint else { return nil }
                current = VirtualPath(mount: parent, dentry: mountpoint)
                continue
            }
            guard let parentDentry = current.dentry.parent else { return nil }
            names.append(current.dentry.name)
            current = VirtualPath(mount: current.mount, dentry: parentDentry)
        }
        return "/" + names.reversed().joined(separator: "/")
    }
}

/// Who resolves a path and from where: the process's root and working
/// directory (or a dirfd's directory), its credentials, and its PID for /proc/self.
public struct PathContext: @unchecked Sendable { // the paths are guarded by VFSLock.shared
    public var root: VirtualPath
    public var workingDirectory: VirtualPath
    public var credentials: FileCredentials
    public var processID: Int32
    public var threadID: Int32

    public init(root: VirtualPath, workingDirectory: VirtualPath, credentials: FileCredentials,
                processID: Int32 = 1, threadID: Int32 = 1) {
        self.root = root
        self.workingDirectory = workingDirectory
        self.credentials = credentials
        self.processID = processID
        self.threadID = threadID
    }
}

/// A directory that exists only in the Sentry: a mountpoint the rootfs lacks.
public final class SyntheticDirectory: Inode, @unchecked Sendable { // guarded by Inode.lock
    override public class var savedTypeName: String { "vfs.SyntheticDirectory" }
    override public class var loadedType: FileType? { .directory }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.linkCount = 2
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
}

/// The mountpoint made for a single-file bind mount whose destination did
/// not exist: an empty file, always covered by the mounted one.
public final class SyntheticFile: Inode, @unchecked Sendable { // guarded by Inode.lock
    override public class var savedTypeName: String { "vfs.SyntheticFile" }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in baseAttributes() }
    }
}

import State

/// A filesystem attached at a place in the tree. The root mount has no parent.
public final class Mount: Savable, @unchecked Sendable { // guarded by VirtualFilesystem.lock
    public static let savedTypeName = "vfs.Mount"

    public var filesystem = Filesystem()
    public var root = Dentry()
    public var parent: Mount?
    public var mountpoint: Dentry?
    /// MS_RDONLY on this mount, on top of a read-only filesystem.
    public var isReadOnly = false
    /// MS_NOEXEC, MS_NOSUID, MS_NODEV as the spec asked.
    public var flags: UInt64 = 0
    /// The path the spec mounted it at, for /proc/self/mounts.
    public var target = "/"

    public required init() {}

    public init(filesystem: Filesystem, parent: Mount?, mountpoint: Dentry?, target: String, readOnly: Bool) {
        self.filesystem = filesystem
        self.root = filesystem.root
        self.parent = parent
        self.mountpoint = mountpoint
        self.target = target
        self.isReadOnly = readOnly
    }

    public var isWritable: Bool { !isReadOnly && !filesystem.isReadOnly }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("filesystem", filesystem)
        try sink.save("root", root)
        try sink.save("parent", parent)
        try sink.save("mountpoint", mountpoint)
        try sink.save("isReadOnly", isReadOnly)
        try sink.save("flags", flags)
        try sink.save("target", target)
    }

    public func load(from source: inout LoadSource) throws {
        filesystem = try source.load("filesystem")
        root = try source.load("root")
        parent = try source.load("parent")
        mountpoint = try source.load("mountpoint")
        isReadOnly = try source.load("isReadOnly")
        flags = try source.load("flags")
        target = try source.load("target")
        try ImageValidation.absolutePath(target, field: "target")
    }
}

/// A place in the mount tree: Linux's `struct path`. A cwd, a root, where an
/// open file was opened.
public struct VirtualPath: SavableStruct, @unchecked Sendable { // both objects are guarded by VirtualFilesystem.lock
    public static let savedTypeName = "vfs.VirtualPath"
    public var mount: Mount
    public var dentry: Dentry

    public init(mount: Mount, dentry: Dentry) {
        self.mount = mount
        self.dentry = dentry
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("mount", mount)
        try sink.save("dentry", dentry)
    }

    public init(from source: inout LoadSource) throws {
        mount = try source.load("mount")
        dentry = try source.load("dentry")
    }

    public static func == (lhs: VirtualPath, rhs: VirtualPath) -> Bool {
        lhs.mount === rhs.mount && lhs.dentry === rhs.dentry
    }

    public var inode: Inode { dentry.inode }

    /// An image's place is beneath its mount's root (else `..` would walk
    /// out of the mount), at most PATH_MAX levels down. Called from the
    /// holder's afterLoad, once every dentry is loaded.
    func validateLoaded(field: String) throws {
        var current: Dentry? = dentry
        for _ in 0..<Dentry.maximumDepth {
            guard let step = current else { break }
            if step === mount.root { return }
            current = step.parent
        }
        throw StateError.invalidValue("the dentry is not beneath its mount's root", field: field)
    }
}

import State

/// A name in a filesystem's tree: the link from a parent directory to an
/// inode. Mounts are keyed by dentry, so a dentry's identity must stay stable
/// while it is a mount point. `children` is the whole directory for in-memory
/// filesystems and a cache for hostfs.
public final class Dentry: Savable, @unchecked Sendable { // guarded by VirtualFilesystem.lock
    public static let savedTypeName = "vfs.Dentry"

    public var name = ""
    /// nil for a filesystem's root.
    public var parent: Dentry?
    public var inode = Inode()
    public var children: [String: Dentry] = [:]
    /// Unlinked or replaced: still usable through open files, never found by lookup.
    public var isDeleted = false

    public required init() {}

    public init(name: String, parent: Dentry?, inode: Inode) {
        self.name = name
        self.parent = parent
        self.inode = inode
        inode.didAttach(to: self)
    }

    public var filesystem: Filesystem? { inode.filesystem }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("name", name)
        try sink.save("parent", parent)
        try sink.save("inode", inode)
        try sink.save("children", children)
        try sink.save("isDeleted", isDeleted)
    }

    /// A name from an image is one level of a path, as the syscall that made
    /// it required (hostfs opens it on the host); a filesystem root has none.
    public func load(from source: inout LoadSource) throws {
        name = try source.load("name")
        parent = try source.load("parent")
        inode = try source.load("inode")
        children = try source.load("children")
        isDeleted = try source.load("isDeleted")
        if parent == nil {
            try ImageValidation.require(name.isEmpty, field: "name", "a root dentry has the name \(ImageValidation.describe(name))")
        } else {
            try ImageValidation.name(name, field: "name")
        }
    }

    /// The tree is a tree: each child is listed under its own name and names
    /// this dentry as its parent, parents are directories, and the way up
    /// ends at a root within PATH_MAX levels (a cycle would hang every walk).
    public func afterLoad() throws {
        for (key, child) in children {
            let field = "children[\(ImageValidation.describe(key))]"
            try ImageValidation.require(child.name == key && child.parent === self, field: field,
                                        "the child is named \(ImageValidation.describe(child.name)) and has another parent")
        }
        if let parent {
            try ImageValidation.require(parent.inode.isDirectory, field: "parent", "the parent is not a directory")
        }
        (inode as? TmpfsDirectory)?.restoreEntryCount(children.count)
        var depth = 0
        var current = parent
        while let dentry = current {
            depth += 1
            try ImageValidation.require(depth < Self.maximumDepth, field: "parent",
                                        "the parents do not end at a root within \(Self.maximumDepth) levels")
            current = dentry.parent
        }
        inode.didAttach(to: self)
    }

    /// The most levels a path of PATH_MAX bytes can have ("a/" per level).
    static let maximumDepth = LinuxFile.pathMax / 2

    /// Whether `self` is `other` or below it (rename must not move a directory into itself).
    public func isDescendant(of other: Dentry) -> Bool {
        var current: Dentry? = self
        while let dentry = current {
            if dentry === other { return true }
            current = dentry.parent
        }
        return false
    }

    /// The names from the filesystem root down to this dentry.
    public var pathComponents: [String] {
        var names: [String] = []
        var current: Dentry? = self
        while let dentry = current, let parent = dentry.parent {
            names.append(dentry.name)
            current = parent
        }
        return names.reversed()
    }
}

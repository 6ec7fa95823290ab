import State

/// nsfs: what following a /proc/[pid]/ns/* link reaches, one file per
/// namespace whose inode number is the one the link shows, so `stat -L` and
/// `[ a -ef b ]` compare namespaces as on Linux. Never part of the mount tree:
/// each follow makes its own unattached mount, as Linux's nsfs is internal.
public final class NamespaceFilesystem: Filesystem, @unchecked Sendable { // immutable after make
    override public class var savedTypeName: String { "nsfs.Filesystem" }
    override public var typeName: String { "nsfs" }
    /// NSFS_MAGIC.
    override public var magic: Int64 { 0x6e73_6673 }
    /// nsfs's anonymous device on a fresh Linux (0:4).
    static let device = DeviceNumber.make(major: 0, minor: 4)

    /// The place a namespace link leads: its file as the root of a mount of its own.
    static func target(linkName: String, inodeNumber: UInt64) -> VirtualPath {
        let filesystem = NamespaceFilesystem()
        filesystem.deviceNumber = device
        filesystem.isReadOnly = true
        let inode = NamespaceInode()
        inode.initialize(filesystem: filesystem, mode: FileType.regular.rawValue | 0o444, uid: 0, gid: 0)
        inode.inodeNumber = inodeNumber
        inode.linkName = linkName
        filesystem.root = Dentry(name: "", parent: nil, inode: inode)
        let mount = Mount(filesystem: filesystem, parent: nil, mountpoint: nil, target: "/", readOnly: true)
        return VirtualPath(mount: mount, dentry: filesystem.root)
    }
}

/// A namespace's file: empty and read-only; its name is the link's text.
public final class NamespaceInode: Inode, @unchecked Sendable { // immutable after creation
    override public class var savedTypeName: String { "nsfs.Inode" }

    /// "net:[4026531840]", what /proc/self/fd/N shows for an open one.
    public var linkName = ""

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("linkName", linkName)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        linkName = try source.load("linkName")
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        if flags & LinuxFile.accessModeMask != LinuxFile.readOnly { throw .eacces }
        return ProcDataFile(location: location, flags: flags)
    }
}

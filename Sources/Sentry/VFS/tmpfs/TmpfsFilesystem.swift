import State

/// An in-memory filesystem: the contents live in the Sentry and are saved in
/// the checkpoint image, so /tmp survives a restore.
public final class TmpfsFilesystem: Filesystem, @unchecked Sendable { // guarded by VFSLock.shared
    override public class var savedTypeName: String { "tmpfs.Filesystem" }
    override public var typeName: String { "tmpfs" }
    /// TMPFS_MAGIC.
    override public var magic: Int64 { 0x0102_1994 }

    /// A new tmpfs whose root directory has `mode` (tmpfs's default is 01777 for /tmp).
    public static func make(deviceNumber: UInt64, rootMode: UInt32 = 0o1777, uid: UInt32 = 0,
                            gid: UInt32 = 0) -> TmpfsFilesystem {
        let filesystem = TmpfsFilesystem()
        filesystem.deviceNumber = deviceNumber
        let inode = TmpfsDirectory()
        inode.initialize(filesystem: filesystem, mode: FileType.directory.rawValue | (rootMode & 0o7777),
                         uid: uid, gid: gid)
        inode.linkCount = 2
        filesystem.root = Dentry(name: "", parent: nil, inode: inode)
        return filesystem
    }

    override public func statistics() throws(SyscallError) -> FilesystemStatistics {
        let pageCount: UInt64 = 1 << 20
        return FilesystemStatistics(type: magic, blockSize: 4096, blocks: pageCount, freeBlocks: pageCount,
                                    availableBlocks: pageCount, files: 1 << 20, freeFiles: 1 << 20,
                                    nameLength: Int64(LinuxFile.nameMax))
    }
}

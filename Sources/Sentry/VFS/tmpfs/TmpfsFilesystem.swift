import State
import Synchronization

/// An in-memory filesystem: the contents live in the Sentry and are saved in
/// the checkpoint image, so /tmp survives a restore.
public final class TmpfsFilesystem: Filesystem, @unchecked Sendable { // tree guarded by VFSLock.shared, xattrs by their Mutex
    override public class var savedTypeName: String { "tmpfs.Filesystem" }
    override public var typeName: String { "tmpfs" }
    /// TMPFS_MAGIC.
    override public var magic: Int64 { 0x0102_1994 }

    /// Extended attributes by inode number (tmpfs numbers are never reused),
    /// kept in memory as Linux's simple_xattr and saved with the filesystem.
    /// A lock of its own, taken last (the VFS lock may be held: unlink drops an inode's).
    private let extendedAttributes = Mutex<[UInt64: [String: [UInt8]]]>([:])
    /// The most bytes of names and values one inode holds (ENOSPC beyond).
    static let extendedAttributeSpace = 128 << 10

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("extendedAttributes", extendedAttributes.withLock { $0 })
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let loaded: [UInt64: [String: [UInt8]]] = try source.load("extendedAttributes", default: [:])
        for (inode, attributes) in loaded {
            let valid = attributes.allSatisfy { name, value in
                name.utf8.count <= LinuxFile.xattrNameMax && value.count <= LinuxFile.xattrSizeMax
                    && LinuxFile.xattrNamespaces.contains { name.hasPrefix($0) && name.utf8.count > $0.utf8.count }
            }
            guard valid, Self.space(attributes) <= Self.extendedAttributeSpace else {
                throw StateError.invalidValue("tmpfs inode \(inode): extended attributes over Linux's limits")
            }
        }
        extendedAttributes.withLock { $0 = loaded }
    }

    private static func space(_ attributes: [String: [UInt8]]) -> Int {
        attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.count }
    }

    override public func extendedAttribute(_ name: String, of inode: Inode) throws(SyscallError) -> [UInt8] {
        guard let value = extendedAttributes.withLock({ $0[inode.inodeNumber]?[name] }) else { throw .enodata }
        return value
    }

    override public func extendedAttributeNames(of inode: Inode) -> [String] {
        extendedAttributes.withLock { ($0[inode.inodeNumber] ?? [:]).keys.sorted() }
    }

    override public func setExtendedAttribute(_ name: String, of inode: Inode, to value: [UInt8],
                                              flags: UInt32) throws(SyscallError) {
        try extendedAttributes.withLock { all throws(SyscallError) in
            var attributes = all[inode.inodeNumber] ?? [:]
            let exists = attributes[name] != nil
            if flags & LinuxFile.xattrCreate != 0, exists { throw .eexist }
            if flags & LinuxFile.xattrReplace != 0, !exists { throw .enodata }
            attributes[name] = value
            guard Self.space(attributes) <= Self.extendedAttributeSpace else { throw .enospc }
            all[inode.inodeNumber] = attributes
        }
    }

    override public func removeExtendedAttribute(_ name: String, of inode: Inode) throws(SyscallError) {
        try extendedAttributes.withLock { all throws(SyscallError) in
            guard all[inode.inodeNumber]?.removeValue(forKey: name) != nil else { throw .enodata }
            if all[inode.inodeNumber]?.isEmpty == true { all[inode.inodeNumber] = nil }
        }
    }

    /// The inode's last link is gone: its attributes go with it.
    func dropExtendedAttributes(of inode: Inode) {
        extendedAttributes.withLock { $0[inode.inodeNumber] = nil }
    }

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

import State
import Synchronization

/// An in-memory filesystem: file data lives in the MemoryFile, as anonymous
/// memory does (counted against the container's memory limit, saved in
/// pages.img with the rest, mapped by MAP_SHARED as the same pages), and the
/// tree in the Sentry, saved in the checkpoint image, so /tmp survives a
/// restore. Bounded by the mount's `size=` and `nr_inodes=` as Linux's tmpfs.
public final class TmpfsFilesystem: Filesystem, PageQuota, @unchecked Sendable { // tree guarded by VFSLock.shared, usage by `usage`, xattrs by their Mutex
    override public class var savedTypeName: String { "tmpfs.Filesystem" }
    override public class var notSaved: Set<String> {
        super.notSaved.union([
            "memoryFile", // attached again by the kernel after load
        ])
    }
    override public class var savedAs: [String: String] {
        super.savedAs.merging(["usage": "pageLimit"]) { $1 } // and inodeLimit, pagesUsed, inodesUsed
    }
    override public var typeName: String { "tmpfs" }
    /// TMPFS_MAGIC.
    override public var magic: Int64 { 0x0102_1994 }

    /// Extended attributes by inode number (tmpfs numbers are never reused),
    /// kept in memory as Linux's simple_xattr and saved with the filesystem.
    /// A lock of its own, taken last (the VFS lock may be held: unlink drops an inode's).
    private let extendedAttributes = Mutex<[UInt64: [String: [UInt8]]]>([:])
    /// The most bytes of names and values one inode holds (ENOSPC beyond).
    static let extendedAttributeSpace = 128 << 10

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

    /// What statfs reports for a mount without `size=`/`nr_inodes=` (Linux: half of RAM).
    static let nominalPages: UInt64 = 1 << 20

    /// Not saved: where file data lives, the kernel's MemoryFile
    /// (`VirtualFilesystem.attachMemoryFile`, at boot and after a restore).
    public private(set) var memoryFile: MemoryFile?
    /// Leaf lock: taken under an inode's lock, never the other way.
    private let usage = Mutex(Usage())

    /// The mount's limits and what is used of them.
    struct Usage {
        /// `size=` in pages, and `nr_inodes=`; nil for none.
        var pageLimit: UInt64?
        var inodeLimit: UInt64?
        var pages: UInt64 = 0
        var inodes: UInt64 = 1
        /// Files loaded from an image of the format that kept data in
        /// state.img, moved into the MemoryFile once it exists.
        var legacyFiles: [TmpfsRegularFile] = []
    }

    /// A new tmpfs whose root directory has `mode` (tmpfs's default is 01777 for /tmp).
    public static func make(deviceNumber: UInt64, rootMode: UInt32 = 0o1777, uid: UInt32 = 0,
                            gid: UInt32 = 0, sizeLimit: UInt64? = nil, inodeLimit: UInt64? = nil) -> TmpfsFilesystem {
        let filesystem = TmpfsFilesystem()
        filesystem.deviceNumber = deviceNumber
        filesystem.usage.withLock { usage in
            usage.pageLimit = sizeLimit.map { ($0 >> Page.shift) + ($0 & Page.mask == 0 ? 0 : 1) }
            usage.inodeLimit = inodeLimit
        }
        let inode = TmpfsDirectory()
        inode.initialize(filesystem: filesystem, mode: FileType.directory.rawValue | (rootMode & 0o7777),
                         uid: uid, gid: gid)
        inode.linkCount = 2
        filesystem.root = Dentry(name: "", parent: nil, inode: inode)
        return filesystem
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let usage = usage.withLock { $0 }
        try sink.save("pageLimit", usage.pageLimit)
        try sink.save("inodeLimit", usage.inodeLimit)
        try sink.save("pagesUsed", usage.pages)
        try sink.save("inodesUsed", usage.inodes)
        try sink.save("extendedAttributes", extendedAttributes.withLock { $0 })
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let pageLimit: UInt64? = try source.load("pageLimit", default: nil)
        let inodeLimit: UInt64? = try source.load("inodeLimit", default: nil)
        let pages: UInt64 = try source.load("pagesUsed", default: 0)
        let inodes: UInt64 = try source.load("inodesUsed", default: 1)
        usage.withLock { usage in
            usage.pageLimit = pageLimit
            usage.inodeLimit = inodeLimit
            usage.pages = pages
            usage.inodes = inodes
        }
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

    /// Gives the filesystem its MemoryFile and moves the data of files loaded
    /// from an older image into it.
    func attach(memoryFile: MemoryFile) throws(SyscallError) {
        self.memoryFile = memoryFile
        let legacy = usage.withLock { usage in
            defer { usage.legacyFiles = [] }
            return usage.legacyFiles
        }
        for file in legacy { try file.moveLegacyData(into: memoryFile) }
    }

    func registerLegacy(_ file: TmpfsRegularFile) {
        usage.withLock { $0.legacyFiles.append(file) }
    }

    /// Takes `count` pages of the mount's size; false (ENOSPC) past `size=`.
    func chargePages(_ count: UInt64) -> Bool {
        usage.withLock { usage in
            if let limit = usage.pageLimit, usage.pages > limit || count > limit - usage.pages { return false }
            usage.pages += count
            return true
        }
    }

    func releasePages(_ count: UInt64) {
        usage.withLock { usage in usage.pages -= min(count, usage.pages) }
    }

    /// Takes an inode; false (ENOSPC) past `nr_inodes=`.
    func chargeInode() -> Bool {
        usage.withLock { usage in
            if let limit = usage.inodeLimit, usage.inodes >= limit { return false }
            usage.inodes += 1
            return true
        }
    }

    func releaseInode() {
        usage.withLock { usage in usage.inodes -= min(1, usage.inodes) }
    }

    override public func statistics() throws(SyscallError) -> FilesystemStatistics {
        let usage = usage.withLock { $0 }
        let pages = usage.pageLimit ?? Self.nominalPages
        let files = usage.inodeLimit ?? Self.nominalPages
        let freePages = pages - min(usage.pages, pages), freeFiles = files - min(usage.inodes, files)
        return FilesystemStatistics(type: magic, blockSize: Int64(Page.size), blocks: pages, freeBlocks: freePages,
                                    availableBlocks: freePages, files: files, freeFiles: freeFiles,
                                    nameLength: Int64(LinuxFile.nameMax))
    }
}

extension VirtualFilesystem {
    /// Gives every tmpfs of the tree the kernel's MemoryFile for its file
    /// data: at boot, and after a restore once the MemoryFile is open again.
    public func attachMemoryFile(_ memoryFile: MemoryFile) throws(SyscallError) {
        let filesystems = VFSLock.shared.withLock { _ in
            (mounts + [memfdMount].compactMap { $0 }).compactMap { $0.filesystem as? TmpfsFilesystem }
        }
        for filesystem in filesystems { try filesystem.attach(memoryFile: memoryFile) }
    }
}

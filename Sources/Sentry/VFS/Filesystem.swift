import State
import Synchronization

/// One filesystem instance (a tmpfs, the rootfs's hostfs, devfs, procfs): its
/// device number, root and inode numbering. Subclassed per filesystem type.
open class Filesystem: Savable, @unchecked Sendable { // nextInodeNumber is guarded by `counter`
    open class var savedTypeName: String { "vfs.Filesystem" }
    open class var notSaved: Set<String> { [] }
    open class var savedAs: [String: String] {
        ["counter": "nextInodeNumber"]
    }

    /// The name /proc/self/mounts and statfs show ("tmpfs", "proc").
    open var typeName: String { "none" }
    /// statfs's f_type.
    open var magic: Int64 { 0 }

    public var deviceNumber: UInt64 = 0
    public var root = Dentry()
    public var isReadOnly = false
    /// Inode numbers; a leaf (see VFSLock).
    private let counter = Mutex<UInt64>(1)

    public required init() {}

    public func allocateInodeNumber() -> UInt64 {
        counter.withLock { next in
            defer { next += 1 }
            return next
        }
    }

    open func save(to sink: inout SaveSink) throws {
        try sink.save("deviceNumber", deviceNumber)
        try sink.save("root", root)
        try sink.save("isReadOnly", isReadOnly)
        try sink.save("nextInodeNumber", counter.withLock { $0 })
    }

    open func load(from source: inout LoadSource) throws {
        deviceNumber = try source.load("deviceNumber")
        root = try source.load("root")
        isReadOnly = try source.load("isReadOnly")
        let next: UInt64 = try source.load("nextInodeNumber")
        counter.withLock { $0 = next }
    }

    open func afterLoad() throws {}

    // MARK: Extended attributes (the xattr calls, after their argument and permission checks)

    /// The value of `name` on `inode`; ENODATA when it has none.
    open func extendedAttribute(_ name: String, of inode: Inode) throws(SyscallError) -> [UInt8] { throw .enodata }

    /// The names `inode` has, in the order listxattr gives them.
    open func extendedAttributeNames(of inode: Inode) -> [String] { [] }

    /// setxattr with XATTR_CREATE/XATTR_REPLACE `flags`; EOPNOTSUPP on a filesystem
    /// without extended attributes, as Linux answers.
    open func setExtendedAttribute(_ name: String, of inode: Inode, to value: [UInt8],
                                   flags: UInt32) throws(SyscallError) {
        throw .eopnotsupp
    }

    open func removeExtendedAttribute(_ name: String, of inode: Inode) throws(SyscallError) { throw .enodata }

    /// statfs(2) figures; in-memory filesystems report a nominal size.
    open func statistics() throws(SyscallError) -> FilesystemStatistics {
        FilesystemStatistics(type: magic, blockSize: 4096, blocks: 0, freeBlocks: 0, availableBlocks: 0,
                             files: 0, freeFiles: 0, nameLength: Int64(LinuxFile.nameMax))
    }
}

/// What statfs(2) reports.
public struct FilesystemStatistics: Sendable {
    public var type: Int64
    public var blockSize: Int64
    public var blocks: UInt64
    public var freeBlocks: UInt64
    public var availableBlocks: UInt64
    public var files: UInt64
    public var freeFiles: UInt64
    public var nameLength: Int64
    public var flags: Int64 = 0

    public init(type: Int64, blockSize: Int64, blocks: UInt64, freeBlocks: UInt64, availableBlocks: UInt64,
                files: UInt64, freeFiles: UInt64, nameLength: Int64) {
        self.type = type
        self.blockSize = blockSize
        self.blocks = blocks
        self.freeBlocks = freeBlocks
        self.availableBlocks = availableBlocks
        self.files = files
        self.freeFiles = freeFiles
        self.nameLength = nameLength
    }

    /// `struct statfs` on x86_64 (120 bytes).
    public func encode() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 120)
        out.put(type, at: 0)
        out.put(blockSize, at: 8)
        out.put(blocks, at: 16)
        out.put(freeBlocks, at: 24)
        out.put(availableBlocks, at: 32)
        out.put(files, at: 40)
        out.put(freeFiles, at: 48)
        out.put(nameLength, at: 64)
        out.put(blockSize, at: 72)
        out.put(flags, at: 80)
        return out
    }
}

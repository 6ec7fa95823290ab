import State
import Synchronization

/// A file's identity and metadata, shared by every name (dentry) that links to
/// it. Filesystems subclass it; the base class keeps the attributes that
/// in-memory filesystems own, and the directory operations, which default to
/// ENOTDIR, are called with the VFS lock held.
///
/// Subclasses override `savedTypeName`, `save(to:)`/`load(from:)` (calling super)
/// and the operations they support.
open class Inode: Savable, @unchecked Sendable { // attributes are guarded by `lock`
    open class var savedTypeName: String { "vfs.Inode" }
    open class var notSaved: Set<String> { ["lock", "inotifyWatches", "openDescriptions"] }
    open class var savedAs: [String: String] { [:] }

    /// Guards the attributes below and a subclass's data. Lock order (see
    /// VFSLock): taken under the VFS lock, a FileDescription's, the MM's or
    /// a SharedMemory's; takes only the MemoryFile's.
    public let lock = Mutex(())
    public var filesystem: Filesystem?
    public var inodeNumber: UInt64 = 0
    /// Type and permission bits.
    public var mode: UInt32 = 0
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var linkCount: UInt64 = 1
    public var accessTime = FileTime(seconds: 0, nanoseconds: 0)
    public var modificationTime = FileTime(seconds: 0, nanoseconds: 0)
    public var changeTime = FileTime(seconds: 0, nanoseconds: 0)
    /// flock and fcntl locks on this file, made by the first lock request.
    private var fileLocks: FileLocks?
    /// The inotify watches on this file; rebuilt from the instances' watches
    /// after a load. A leaf, taken under an inotify instance's lock.
    let inotifyWatches = Mutex<[InotifyWatch]>([])
    /// Open descriptions of this file (counted again as they load): an
    /// unlinked file is gone for inotify (IN_DELETE_SELF) when the last closes.
    let openDescriptions = Atomic<Int>(0)

    public required init() {}

    /// Sets up a fresh inode of `filesystem` with the creator's identity.
    public func initialize(filesystem: Filesystem, mode: UInt32, uid: UInt32, gid: UInt32) {
        self.filesystem = filesystem
        self.inodeNumber = filesystem.allocateInodeNumber()
        self.mode = mode
        self.uid = uid
        self.gid = gid
        let now = FileTime.now()
        accessTime = now
        modificationTime = now
        changeTime = now
    }

    open func save(to sink: inout SaveSink) throws {
        try sink.save("filesystem", filesystem)
        try sink.save("inodeNumber", inodeNumber)
        try sink.save("mode", mode)
        try sink.save("uid", uid)
        try sink.save("gid", gid)
        try sink.save("linkCount", linkCount)
        try sink.save("accessTime", accessTime)
        try sink.save("modificationTime", modificationTime)
        try sink.save("changeTime", changeTime)
        try sink.save("fileLocks", lock.withLock { _ in fileLocks })
    }

    open func load(from source: inout LoadSource) throws {
        filesystem = try source.load("filesystem")
        inodeNumber = try source.load("inodeNumber")
        mode = try source.load("mode")
        uid = try source.load("uid")
        gid = try source.load("gid")
        linkCount = try source.load("linkCount")
        accessTime = try source.load("accessTime")
        modificationTime = try source.load("modificationTime")
        changeTime = try source.load("changeTime")
        fileLocks = try source.load("fileLocks", default: nil)
        let type = FileType(mode: mode)
        try ImageValidation.require(type != nil && mode & ~(LinuxFile.typeMask | LinuxFile.permissionMask) == 0,
                                    field: "mode", "mode 0o\(String(mode, radix: 8)) is not a file type and permissions")
        if let expected = Self.loadedType {
            try ImageValidation.require(type == expected, field: "mode", "a \(Self.savedTypeName) is a \(expected)")
        }
    }

    /// The one file type an inode class holds (a tmpfs directory is a
    /// directory), checked at load; nil for classes that hold any.
    open class var loadedType: FileType? { nil }

    open func afterLoad() throws {}

    /// The inode's locks, made on first use (flock, fcntl F_SETLK).
    var locks: FileLocks {
        lock.withLock { _ in
            if let fileLocks { return fileLocks }
            let made = FileLocks()
            fileLocks = made
            return made
        }
    }

    /// The inode's locks if any were ever asked for: closing a file looks here.
    var existingLocks: FileLocks? { lock.withLock { _ in fileLocks } }

    /// A dentry now names this inode (made, or loaded from an image): hostfs
    /// inodes find their host file through it.
    open func didAttach(to dentry: Dentry) {}

    public var type: FileType? { FileType(mode: lock.withLock { _ in mode }) }
    public var isDirectory: Bool { type == .directory }
    public var isSymlink: Bool { type == .symlink }

    // MARK: Attributes

    /// stat(2) of this inode; in-memory filesystems report their fields.
    open func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in baseAttributes() }
    }

    /// `attributes()` for a stat-family call of the calling task, right
    /// after the path walk that found this inode: hostfs answers with what
    /// that walk's host stat of it found, instead of asking the host again.
    open func attributesAfterWalk() throws(SyscallError) -> FileAttributes {
        try attributes()
    }

    /// The attributes from this object's fields; call with `lock` held.
    public func baseAttributes() -> FileAttributes {
        var result = FileAttributes()
        result.device = filesystem?.deviceNumber ?? 0
        result.inodeNumber = inodeNumber
        result.mode = mode
        result.linkCount = linkCount
        result.uid = uid
        result.gid = gid
        result.accessTime = accessTime
        result.modificationTime = modificationTime
        result.changeTime = changeTime
        return result
    }

    /// chmod/chown/truncate/utimes after the VFS checked permissions.
    open func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        if change.size != nil {
            throw isDirectory ? .eisdir : .einval
        }
        lock.withLock { _ in applyBaseChange(change) }
    }

    /// Applies the metadata part of `change` to the fields; call with `lock` held.
    public func applyBaseChange(_ change: AttributeChange) {
        if let newMode = change.mode { mode = (mode & LinuxFile.typeMask) | (newMode & LinuxFile.permissionMask) }
        if let newUID = change.uid { uid = newUID }
        if let newGID = change.gid { gid = newGID }
        if let time = change.accessTime { accessTime = time }
        if let time = change.modificationTime { modificationTime = time }
        changeTime = FileTime.now()
    }

    /// Whether `credentials` may access this inode with `want` (LinuxFile.may*).
    open func mayAccess(_ credentials: FileCredentials, want: UInt32) -> Bool {
        let (mode, uid, gid) = lock.withLock { _ in (self.mode, self.uid, self.gid) }
        return credentials.mayAccess(mode: mode, uid: uid, gid: gid, want: want)
    }

    // MARK: Files

    /// A new open file description; the VFS already checked access and flags.
    open func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        if isDirectory {
            return DirectoryFile(location: location, flags: flags)
        }
        throw .enxio
    }

    /// The target of a symlink. `context` is the caller, for procfs's
    /// /proc/self, whose target depends on who asks.
    /// Called with the VFS lock held, like the directory operations below.
    open func readLink(context: PathContext?) throws(SyscallError) -> String { throw .einval }

    /// For magic links (procfs's fd/N, exe): the place the link stands for,
    /// followed without reading the target as a path. VFS lock held.
    open func magicLinkTarget(context: PathContext) throws(SyscallError) -> VirtualPath? { nil }

    // MARK: Directory operations (VFS lock held; `directory` is this inode's dentry)

    /// The child called `name`, or nil when it does not exist.
    open func lookup(_ name: String, in directory: Dentry) throws(SyscallError) -> Dentry? { throw .enotdir }

    /// The children in a stable order, without "." and "..".
    open func listEntries(in directory: Dentry) throws(SyscallError) -> [DirectoryEntry] { throw .enotdir }

    open func createFile(_ name: String, in directory: Dentry, mode: UInt32,
                         credentials: FileCredentials) throws(SyscallError) -> Dentry { throw .enotdir }

    open func makeDirectory(_ name: String, in directory: Dentry, mode: UInt32,
                            credentials: FileCredentials) throws(SyscallError) -> Dentry { throw .enotdir }

    open func makeSymlink(_ name: String, in directory: Dentry, target: String,
                          credentials: FileCredentials) throws(SyscallError) -> Dentry { throw .enotdir }

    /// Adds `node`, an inode that lives only in the Sentry (a FIFO, a bound
    /// unix socket), under `name`: `mode` has its type and the permissions
    /// after the umask. EPERM where the filesystem stores none.
    open func addSandboxNode(_ node: Inode, name: String, in directory: Dentry, mode: UInt32,
                             credentials: FileCredentials) throws(SyscallError) -> Dentry { throw .eperm }

    /// Whether this inode lives only in the Sentry, even under a host mount.
    open var isSandboxNode: Bool { false }

    /// A new name for `existing` (same filesystem, not a directory).
    open func makeLink(_ name: String, in directory: Dentry, to existing: Dentry) throws(SyscallError) -> Dentry {
        throw .enotdir
    }

    /// unlink (`directory == false`) or rmdir of `child`, already checked to be of the right kind.
    open func remove(_ child: Dentry, from directory: Dentry, isDirectory: Bool) throws(SyscallError) {
        throw .enotdir
    }

    /// Moves `child` of `directory` to `newName` in `newDirectory` (same
    /// filesystem). `replaced` is the existing target, already checked
    /// compatible; with `exchange`, the two swap.
    open func rename(_ child: Dentry, from directory: Dentry, to newName: String, in newDirectory: Dentry,
                     replacing replaced: Dentry?, exchange: Bool) throws(SyscallError) {
        throw .enotdir
    }
}

/// One name in a directory listing.
public struct DirectoryEntry: Sendable, Equatable {
    public var name: String
    public var inodeNumber: UInt64
    public var type: FileType

    public init(name: String, inodeNumber: UInt64, type: FileType) {
        self.name = name
        self.inodeNumber = inodeNumber
        self.type = type
    }
}

import State
import Synchronization

/// The lock every VFS metadata operation holds: path walks, creation, removal,
/// rename, mount and directory listing. One lock keeps rename and walk
/// consistent across mounts (gVisor's tmpfs also serialises metadata per
/// filesystem); file data has per-inode locks taken after it, never before.
///
/// The Sentry's lock order, outermost first (a lock may be taken while only
/// locks above it are held; each declaration repeats its place):
/// 1. Boot's `Loader.checkpointLock`, then `VFSLock.shared` (held by walks, so
///    by every inode's lookup, listEntries, readLink and magicLinkTarget, and
///    by procfs's `ProcSource.snapshot`, which therefore never names a file).
/// 2. Under it, each a leaf for the others here: `PIDNamespace.lock`,
///    `ThreadGroup.lock`, `FDTable.lock`, `FSContext.lock`, `FileDescription.lock`.
/// 3. `MemoryManager.lock` (procfs snapshots read the MM under the VFS lock,
///    so mmap names a file before taking it, and maps are named after it).
/// 4. `SharedMemory.lock` (MM faults fill shared pages).
/// 5. File data: `Inode.lock`, `HostFile.hostFD`, `HostInode.fdLock`/`shared`
///    (read under FileDescription.lock, MM and SharedMemory fills).
/// 6. `MemoryFile.lock`; State's `PagesLoader` lock (a restore's pages loaded
///    on the spot under the MM's, calling back into no Sentry lock);
///    `Pipe.lock`; then `WaitQueue.entries`, an epoll instance's lock, `Waiter.condition`
///    (wake-ups: objects notify their queues after letting their own lock go).
/// 7. Leaves that call nothing: counters, `FileDescription.referenceCount`,
///    `HostFilesystem.hostLock`, `UTSNamespace`, `SignalHandlers`,
///    `SyscallStatistics`, `Task.interruptLock`, `Kernel.exitNotice`, `HostPoller.state`.
public enum VFSLock {
    public static let shared = Mutex(())
}

/// An open file: what open(2) returns and dup(2) shares. Holds the offset and
/// the status flags; the FD table holds the close-on-exec flag. Subclassed per
/// kind of file (tmpfs regular file, host file, pipe end, device).
open class FileDescription: Savable, @unchecked Sendable { // offset and flags are guarded by `lock`
    open class var savedTypeName: String { "vfs.FileDescription" }
    open class var notSaved: Set<String> { ["lock", "epollWatches"] }
    open class var savedAs: [String: String] {
        ["referenceCount": "references"]
    }

    /// Serialises offset updates, like Linux's f_pos_lock. Lock order (see
    /// VFSLock): may be taken under the VFS lock; file data locks nest inside.
    public let lock = Mutex(())
    /// The access mode and the status flags (O_APPEND, O_NONBLOCK, ...).
    public var statusFlags: UInt32 = 0
    public var offset: Int64 = 0
    /// Where it was opened; nil for pipes and other anonymous files.
    public var location: VirtualPath?
    /// How many FD table slots refer to it; the last close calls `released()`.
    /// A leaf: released() runs after it is let go.
    private let referenceCount = Mutex(0)
    /// The epoll items watching this description (Linux's f_ep): they go
    /// when its last reference does. Host-only: epoll instances link their
    /// items again after a load. A leaf.
    let epollWatches = Mutex<[EpollItem]>([])

    public required init() {}

    public init(location: VirtualPath?, flags: UInt32) {
        self.location = location
        self.statusFlags = flags & ~(LinuxFile.create | LinuxFile.exclusive | LinuxFile.noControllingTerminal
            | LinuxFile.truncate | LinuxFile.closeOnExec)
        location?.inode.openDescriptions.add(1, ordering: .relaxed)
    }

    open func save(to sink: inout SaveSink) throws {
        try sink.save("statusFlags", statusFlags)
        try sink.save("offset", offset)
        try sink.save("location", location)
        try sink.save("references", referenceCount.withLock { $0 })
    }

    open func load(from source: inout LoadSource) throws {
        statusFlags = try source.load("statusFlags")
        offset = try source.load("offset")
        location = try source.load("location")
        let references: Int = try source.load("references")
        referenceCount.withLock { $0 = references }
        try ImageValidation.require(offset >= 0, field: "offset", "negative offset \(offset)")
        try ImageValidation.require(references >= 0, field: "references", "negative reference count \(references)")
        try ImageValidation.require(statusFlags & ~LinuxFile.openStatusFlags == 0, field: "statusFlags",
                                    "unknown flags 0o\(String(statusFlags & ~LinuxFile.openStatusFlags, radix: 8))")
    }

    /// Subclasses that override it call it first.
    open func afterLoad() throws {
        try location?.validateLoaded(field: "location")
        location?.inode.openDescriptions.add(1, ordering: .relaxed)
    }

    // MARK: Flags

    public var flags: UInt32 { lock.withLock { _ in statusFlags } }
    public var isPathOnly: Bool { flags & LinuxFile.pathOnly != 0 }
    public var isReadable: Bool {
        let flags = self.flags
        return flags & LinuxFile.pathOnly == 0 && flags & LinuxFile.accessModeMask != LinuxFile.writeOnly
    }
    public var isWritable: Bool {
        let flags = self.flags
        let mode = flags & LinuxFile.accessModeMask
        return flags & LinuxFile.pathOnly == 0 && (mode == LinuxFile.writeOnly || mode == LinuxFile.readWrite)
    }
    public var isNonBlocking: Bool { flags & LinuxFile.nonBlocking != 0 }
    public var isAppending: Bool { flags & LinuxFile.append != 0 }

    /// F_SETFL: only the settable status flags change.
    open func setStatusFlags(_ newFlags: UInt32) throws(SyscallError) {
        lock.withLock { _ in
            statusFlags = (statusFlags & ~LinuxFile.settableStatusFlags) | (newFlags & LinuxFile.settableStatusFlags)
        }
    }

    open var inode: Inode? { location?.dentry.inode }

    // MARK: References (the FD table's)

    /// The references held now (FD table entries, messages in flight, calls in progress).
    public var references: Int { referenceCount.withLock { $0 } }

    public func retainReference() {
        referenceCount.withLock { $0 += 1 }
    }

    public func releaseReference() {
        let remaining = referenceCount.withLock { count -> Int in
            count -= 1
            return count
        }
        guard remaining == 0 else { return }
        let watching = epollWatches.withLock { watches in
            defer { watches = [] }
            return watches
        }
        for item in watching { item.owner?.detach(item) }
        inode?.existingLocks?.releaseDescriptionLocks(of: self)
        if let dentry = location?.dentry {
            if !isPathOnly {
                Inotify.notify(isWritable ? InotifyABI.IN_CLOSE_WRITE : InotifyABI.IN_CLOSE_NOWRITE, on: dentry)
            }
            dentry.inode.openDescriptions.subtract(1, ordering: .relaxed)
            Inotify.unlinked(dentry.inode)
        }
        released()
    }

    /// Ends an open(2): waits as the file needs (`waitUntilOpen`: a FIFO
    /// for its partner), then `install` gives it an FD. The description is
    /// held meanwhile, so a failure on the way (an interrupted wait, EMFILE)
    /// releases it as a close would, in one place (`released`).
    public func completeOpen<T>(waiter: Waiter?,
                                install: (FileDescription) throws(SyscallError) -> T) throws(SyscallError) -> T {
        retainReference()
        defer { releaseReference() }
        try waitUntilOpen(waiter: waiter)
        return try install(self)
    }

    /// Up to `limit` bytes from the file's start, in 1 MiB reads: how the
    /// Sentry itself reads a whole file (an executable, /etc/passwd at boot).
    public func readPrefix(limit: Int) throws(SyscallError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < limit {
            let chunk = try read(count: min(1 << 20, limit - bytes.count), at: Int64(bytes.count), waiter: nil)
            if chunk.isEmpty { break }
            // The first chunk is taken as it is, not copied (a whole binary for exec).
            if bytes.isEmpty { bytes = chunk } else { bytes += chunk }
        }
        return bytes
    }

    /// The last FD referring to this description was closed.
    open func released() {}

    /// After open(2) made the description and before it gets an FD: a FIFO
    /// opened for one end only blocks here until the other end is opened.
    /// Called through `completeOpen`, whose release undoes what the open counted.
    open func waitUntilOpen(waiter: Waiter?) throws(SyscallError) {}

    /// Whether an FD refers to it (a mapping may keep a description with none).
    public var hasReferences: Bool { referenceCount.withLock { $0 > 0 } }

    // MARK: Data

    /// Whether pread/pwrite and lseek make sense (false for pipes: ESPIPE).
    open var isSeekable: Bool { true }

    /// read(2) (`position == nil`, at and advancing the offset) or pread(2).
    /// May block on `waiter` when the file is not non-blocking.
    open func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        if let position { return try readData(count: count, at: position) }
        return try lock.withLock { _ throws(SyscallError) -> [UInt8] in
            let data = try readData(count: count, at: offset)
            offset += Int64(data.count)
            return data
        }
    }

    /// write(2) or pwrite(2); with O_APPEND a write(2) goes to the end.
    open func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        if let position { return try writeData(bytes, at: position, append: false).written }
        return try lock.withLock { _ throws(SyscallError) -> Int in
            let result = try writeData(bytes, at: offset, append: statusFlags & LinuxFile.append != 0)
            offset = result.end
            return result.written
        }
    }

    /// A write by `task` (write(2), splice, sendfile): a socket sends as the
    /// task, for a SO_PASSCRED reader's SCM_CREDENTIALS; other files do not
    /// care who writes.
    func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?, by task: Task) throws(SyscallError) -> Int {
        try write(bytes, at: position, waiter: waiter)
    }

    /// Positional read for seekable files.
    open func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] { throw .einval }

    /// Positional write; with `append` the data goes to the current end. Returns
    /// the count written and the offset after it.
    open func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        throw .einval
    }

    /// lseek(2) for files whose size is their attributes' size. A position
    /// past INT64_MAX is EINVAL, as Linux's (its sum wraps negative).
    open func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 {
        guard isSeekable else { throw .espipe }
        let size: Int64
        switch whence {
        case LinuxFile.seekEnd, LinuxFile.seekData, LinuxFile.seekHole: size = try attributes().size
        default: size = 0
        }
        return try lock.withLock { _ throws(SyscallError) -> Int64 in
            let target: Int64
            switch whence {
            case LinuxFile.seekSet: target = offset
            case LinuxFile.seekCurrent:
                let (sum, overflow) = self.offset.addingReportingOverflow(offset)
                guard !overflow else { throw .einval }
                target = sum
            case LinuxFile.seekEnd:
                let (sum, overflow) = size.addingReportingOverflow(offset)
                guard !overflow else { throw .einval }
                target = sum
            case LinuxFile.seekData:
                guard offset >= 0, offset < size else { throw .enxio }
                target = offset
            case LinuxFile.seekHole:
                guard offset >= 0, offset < size else { throw .enxio }
                target = size
            default: throw .einval
            }
            guard target >= 0 else { throw .einval }
            self.offset = target
            return target
        }
    }

    open func attributes() throws(SyscallError) -> FileAttributes {
        guard let inode else { throw .ebadf }
        return try inode.attributes()
    }

    /// fchmod/fchown/futimens after the VFS's permission checks: the inode's
    /// change, unless the file reaches its data another way (a host FD).
    open func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        guard let inode else { throw .ebadf }
        try inode.setAttributes(change)
    }

    /// ftruncate(2): the syscall layer checked that the file is writable.
    open func truncate(to length: Int64) throws(SyscallError) {
        guard let inode else { throw .einval }
        guard inode.type == .regular else { throw .einval }
        try inode.setAttributes(AttributeChange(size: length))
    }

    open func sync() throws(SyscallError) {}

    /// fallocate(2) after the syscall's checks. In-memory files have no
    /// blocks to reserve: mode 0 only grows the size, FALLOC_FL_KEEP_SIZE (1)
    /// does nothing, and the modes that punch or shift ranges are EOPNOTSUPP.
    open func allocate(mode: Int32, offset: Int64, length: Int64) throws(SyscallError) {
        switch mode {
        case 0:
            let end = offset + length
            if end > (try attributes().size) { try truncate(to: end) }
        case 1: return
        default: throw .eopnotsupp
        }
    }

    /// getdents64: encoded `linux_dirent64` records that fit in `capacity` bytes.
    open func readDirectory(capacity: Int) throws(SyscallError) -> [UInt8] { throw .enotdir }

    /// FIONREAD: bytes readable without blocking.
    open func readableByteCount() throws(SyscallError) -> Int {
        let size = try attributes().size
        return Int(max(0, size - lock.withLock { _ in offset }))
    }

    // MARK: Readiness (poll, select and epoll on the same answers)

    /// The events among `mask` that are ready now; errors and hang-ups are
    /// reported even if not asked for. Files that never block (regular files,
    /// directories, most devices and procfs) are always readable and writable.
    open func readiness(for mask: PollEvents) -> PollEvents {
        PollEvents.alwaysReady.intersection(mask.union(.unmaskable))
    }

    /// Registers `entry` to hear when one of its events may have become
    /// ready (gVisor's EventRegister): poll, epoll and blocking calls wait
    /// this way. Files that are always ready have nothing to announce.
    open func eventRegister(_ entry: WaitEntry) {}

    open func eventUnregister(_ entry: WaitEntry) {}

    /// Whether the file has a poll operation, which epoll_ctl requires
    /// (EPERM otherwise): files that block or announce readiness do; regular
    /// files, directories and most devices, always ready, do not.
    open var supportsPoll: Bool { false }

    /// A host terminal behind this file (the container's stdio), for TCGETS and friends.
    open var hostTerminalFD: Int32? { nil }

    /// The job-control state of that terminal, when the process was given it as its terminal.
    open var terminal: HostTerminal? { nil }

    /// The terminal's TOSTOP: writes from a background process group stop it.
    open var stopsBackgroundWrites: Bool { false }

    /// For mmap: the file's host-independent content, where the file supports it.
    open var isMappable: Bool { false }
}

import CShim
import Glibc
import State
import Synchronization

/// The bytes of an executable or interpreter as the ELF loader takes them:
/// in the memory file, where exec reads them (pages its read-only segments
/// then share instead of copying), or copied from an array (tests). Holds
/// its memory file pages until it goes.
public final class ExecutableBytes {
    /// The file's bytes.
    public let raw: UnsafeRawBufferPointer
    /// Where `raw` starts in the memory file (a page boundary): nil for bytes
    /// copied from an array.
    let memoryOffset: UInt64?
    /// The memory file whose `heldLength` bytes from `memoryOffset` this holds.
    private let memoryFile: MemoryFile?
    private let heldLength: UInt64

    public init(bytes: [UInt8]) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        copy.copyBytes(from: bytes)
        raw = UnsafeRawBufferPointer(copy)
        memoryOffset = nil
        memoryFile = nil
        heldLength = 0
    }

    /// `size` bytes at `offset` in `memoryFile`, whose `heldLength` bytes
    /// from there the caller holds (one reference) and hands to this.
    init?(memoryFile: MemoryFile, offset: UInt64, heldLength: UInt64, size: Int) {
        guard UInt64(size) <= heldLength, let pointer = memoryFile.pointer(at: offset, count: heldLength) else {
            return nil
        }
        raw = UnsafeRawBufferPointer(start: pointer, count: size)
        memoryOffset = offset
        self.memoryFile = memoryFile
        self.heldLength = heldLength
    }

    deinit {
        if let memoryFile, let memoryOffset {
            memoryFile.free(offset: memoryOffset, length: heldLength)
        } else {
            raw.deallocate()
        }
    }
}

/// Host files' contents kept in the memory file, as Linux's page cache
/// keeps them: exec reads a file it has cached neither from the host nor
/// into new pages, and its read-only segments share the cached pages
/// copy-on-write (as a fork's child shares its parent's); so do private
/// mappings without write of a file of at most `maximumFileSize` (ld.so's
/// of a library's text), instead of reading each fault window from the host.
///
/// An entry is the file of one host identity (device and inode) as it was
/// at one version (size, modification and change times, from fstat at every
/// exec and at a mapping's faults until one finds that the cache does not
/// keep the file: VMA.fileNotCached). A file changed within the last
/// `settleTime` is not cached: the host stamps times with a clock tick's
/// granularity, so a write in the same tick as the version read could go
/// unnoticed; past that, any write moves the change time. Pages are held by
/// the cache and by the MMs that share them; `releaseAll` drops the cache's
/// holds (a checkpoint saves only what processes hold). Not saved: a restore
/// starts with an empty cache.
///
/// Called by exec with no lock of ours held, and by the fault path with the
/// faulting MM's lock held. The cache's lock guards its entries only and is
/// never held while a file is read: an entry being filled (a pread of up to
/// the whole file) is marked filling, with its bytes reserved against the
/// budget, and a caller wanting that file at that version waits for that
/// fill alone (with its MM's lock still held) while every other file's
/// lookups go on. A fill takes no MM lock (it reads a host file), so no wait
/// closes a cycle.
public final class FileCache: @unchecked Sendable {
    /// A host file's identity.
    /// hostfs keys its inodes by it too (HostFilesystem.InodeTable).
    public struct Identity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    /// A version of a host file's contents, as fstat tells it.
    public struct Version: Equatable, Sendable {
        var size: Int64
        var modification: FileTime
        var change: FileTime

        /// Whether a change to come would show in this version's times: it
        /// is more than `settleTime` old, past the host's timestamp granularity.
        var isSettled: Bool {
            max(modification.seconds, change.seconds) < FileTime.now().seconds - FileCache.settleTime
        }
    }

    /// A host file's identity and version from its fstat.
    static func identityAndVersion(of status: stat) -> (Identity, Version) {
        (Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)),
         Version(size: Int64(status.st_size), modification: FileTime(status.st_mtim), change: FileTime(status.st_ctim)))
    }

    /// A file changed more recently than this (seconds) is read afresh, not cached.
    static let settleTime: Int64 = 2
    /// Larger files mapped are read by the fault window, not whole.
    static let maximumFileSize: Int64 = 32 << 20
    /// The most memory the cache holds: the container's limit / `limitShare`, at most `maximumBytes`.
    static let maximumBytes: UInt64 = 256 << 20
    static let limitShare: UInt64 = 8

    /// A file's pages the cache holds, or the fill reading them.
    private enum Entry {
        case ready(Pages)
        case filling(Fill)
    }

    private struct Pages {
        var version: Version
        var offset: UInt64
        var length: UInt64
        var lastUse: UInt64
    }

    /// A fill in progress: the version it reads and the bytes it reserved
    /// (counted in `heldBytes` while its entry stands). `@unchecked Sendable`:
    /// `done` is guarded by `condition`, taken with at most an MM's lock held.
    private final class Fill: @unchecked Sendable {
        let version: Version
        let length: UInt64
        private let condition = HostCondition()
        private var done = false

        init(version: Version, length: UInt64) {
            self.version = version
            self.length = length
        }

        func finish() {
            condition.withLock {
                done = true
                condition.broadcast()
            }
        }

        func wait() {
            condition.withLock {
                while !done { condition.wait() }
            }
        }
    }

    /// What a lookup found to do, with the cache's lock let go.
    private enum Step {
        case found(ExecutableBytes)
        case wait(Fill)
        /// Read the file into fresh pages, kept by the cache when there is a `Fill`.
        case read(Fill?)
        case notKept
    }

    // Guarded by `lock`, taken with at most an MM's lock held, never held
    // while a file is read or a fill is waited for; takes the memory file's.
    private let lock = Mutex<Void>(())
    private var entries: [Identity: Entry] = [:]
    private var useCounter: UInt64 = 0
    /// Bytes of ready entries and of the fills that will be kept.
    private var heldBytes: UInt64 = 0

    /// Whether the cache keeps `length` bytes (a page multiple) of a host
    /// file at `version` (nil `identity`: no host file) when there is room:
    /// a settled version, within the budget.
    func keeps(_ identity: Identity?, at version: Version, length: UInt64, memoryFile: MemoryFile) -> Bool {
        identity != nil && version.isSettled && length <= Self.budget(memoryFile)
    }

    /// The `size` bytes of the file `identity` names at `version` (nil for
    /// a file that is no host file) in `memoryFile`: the cached ones, or
    /// fresh pages filled by `fill` (called with no lock of the cache held),
    /// which the cache keeps when the version has settled and they fit.
    /// With `onlyIfKept`, nil instead of pages the cache would not keep;
    /// `kept`: what `keeps` just said for them, not asked again.
    func bytes(of identity: Identity?, at version: Version, size: Int, memoryFile: MemoryFile, onlyIfKept: Bool = false,
               kept: Bool? = nil, source: (any MappableFile)? = nil,
               fill: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError) -> ExecutableBytes? {
        guard size > 0, let length = Page.roundUp(UInt64(size)) else { throw .enoexec }
        let keep = kept ?? keeps(identity, at: version, length: length, memoryFile: memoryFile)
        while true {
            let step = try lock.withLock { _ throws(SyscallError) -> Step in
                try lookupLocked(identity, version, length, size, keep: keep, onlyIfKept: onlyIfKept, memoryFile)
            }
            switch step {
            case .found(let bytes):
                return bytes
            case .wait(let other):
                // Then look again: its pages, or (if it failed) a fill of our own.
                other.wait()
            case .notKept:
                return nil
            case .read(let kept):
                return try read(identity, length, size, kept, memoryFile, source, fill)
            }
        }
    }

    /// Drops every hold of the cache (the pages processes share stay theirs);
    /// a fill under way is not kept when it ends.
    func releaseAll(memoryFile: MemoryFile) {
        lock.withLock { _ in
            for (identity, entry) in entries {
                switch entry {
                case .ready(let pages): dropLocked(identity, pages, memoryFile)
                case .filling(let fill):
                    entries[identity] = nil
                    heldBytes -= fill.length
                }
            }
        }
    }

    /// Bytes the cache holds, and those it reserved for reads under way.
    var cachedBytes: UInt64 { lock.withLock { _ in heldBytes } }

    private static func budget(_ memoryFile: MemoryFile) -> UInt64 {
        min(Self.maximumBytes, memoryFile.limit / Self.limitShare)
    }

    private func lookupLocked(_ identity: Identity?, _ version: Version, _ length: UInt64, _ size: Int, keep: Bool,
                              onlyIfKept: Bool, _ memoryFile: MemoryFile) throws(SyscallError) -> Step {
        useCounter += 1
        let uncached: Step = onlyIfKept ? .notKept : .read(nil)
        if let identity, let entry = entries[identity] {
            switch entry {
            case .ready(let pages):
                if pages.version == version, pages.length == length {
                    try memoryFile.retain([pages.offset..<pages.offset + length])
                    entries[identity] = .ready(Pages(version: version, offset: pages.offset, length: length,
                                                     lastUse: useCounter))
                    return .found(try Self.wrap(memoryFile, pages.offset, length, size))
                }
                // The file changed: the old contents are of no more use.
                dropLocked(identity, pages, memoryFile)
            case .filling(let fill):
                if fill.version == version, fill.length == length { return .wait(fill) }
                // Another version is being read (the file changed meanwhile): this one is not kept.
                return uncached
            }
        }
        guard let identity, keep else { return uncached }
        let budget = Self.budget(memoryFile)
        while heldBytes + length > budget, let (oldest, pages) = oldestReadyLocked() {
            dropLocked(oldest, pages, memoryFile)
        }
        // The rest is reserved by fills under way.
        guard heldBytes + length <= budget else { return uncached }
        let fill = Fill(version: version, length: length)
        entries[identity] = .filling(fill)
        heldBytes += length
        return .read(fill)
    }

    /// Reads the file into fresh pages with no lock of the cache held
    /// (`source` copies it in the host when it can, else `fill` reads it);
    /// with `kept`, the cache keeps them (unless `releaseAll` came meanwhile) and
    /// those waiting for them look again.
    private func read(_ identity: Identity?, _ length: UInt64, _ size: Int, _ kept: Fill?, _ memoryFile: MemoryFile,
                      _ source: (any MappableFile)?,
                      _ fill: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError)
        -> ExecutableBytes {
        var offset: UInt64?
        defer {
            if let kept, let identity { finish(kept, of: identity, at: offset, memoryFile) }
        }
        let allocated = try memoryFile.allocate(length)
        guard let pointer = memoryFile.pointer(at: allocated, count: length) else {
            memoryFile.free(offset: allocated, length: length)
            throw .efault
        }
        if source?.copyForMapping(into: memoryFile, at: allocated, count: size) != true {
            cshim_prefault_for_write(pointer, Int(length))
            do throws(SyscallError) {
                try fill(UnsafeMutableRawBufferPointer(start: pointer, count: size))
            } catch {
                memoryFile.free(offset: allocated, length: length)
                throw error
            }
        }
        // The cache's own hold, besides the caller's.
        if kept != nil, (try? memoryFile.retain([allocated..<allocated + length])) != nil { offset = allocated }
        return try Self.wrap(memoryFile, allocated, length, size)
    }

    /// Ends `fill`: its entry holds the pages at `offset` (held once for the
    /// cache), or, without them, goes with its reservation. An entry
    /// `releaseAll` already dropped stays dropped, and so do the pages.
    private func finish(_ fill: Fill, of identity: Identity, at offset: UInt64?, _ memoryFile: MemoryFile) {
        let unkept: UInt64? = lock.withLock { _ in
            guard case .filling(let current) = entries[identity], current === fill else { return offset }
            guard let offset else {
                entries[identity] = nil
                heldBytes -= fill.length
                return nil
            }
            entries[identity] = .ready(Pages(version: fill.version, offset: offset, length: fill.length,
                                             lastUse: useCounter))
            return nil
        }
        if let unkept { memoryFile.free(offset: unkept, length: fill.length) }
        fill.finish()
    }

    private func oldestReadyLocked() -> (Identity, Pages)? {
        var oldest: (Identity, Pages)?
        for (identity, entry) in entries {
            guard case .ready(let pages) = entry else { continue }
            if let current = oldest, current.1.lastUse <= pages.lastUse { continue }
            oldest = (identity, pages)
        }
        return oldest
    }

    private func dropLocked(_ identity: Identity, _ pages: Pages, _ memoryFile: MemoryFile) {
        entries[identity] = nil
        heldBytes -= pages.length
        memoryFile.free(offset: pages.offset, length: pages.length)
    }

    private static func wrap(_ memoryFile: MemoryFile, _ offset: UInt64, _ length: UInt64,
                             _ size: Int) throws(SyscallError) -> ExecutableBytes {
        guard let bytes = ExecutableBytes(memoryFile: memoryFile, offset: offset, heldLength: length, size: size) else {
            memoryFile.free(offset: offset, length: length)
            throw .efault
        }
        return bytes
    }
}

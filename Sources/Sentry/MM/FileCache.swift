import CShim
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
/// use). A file changed within the last `settleTime` is not cached: the
/// host stamps times with a clock tick's granularity, so a write in the same
/// tick as the version read could go unnoticed; past that, any write moves
/// the change time. Pages are held by the cache and by the MMs that share
/// them; `releaseAll` drops the cache's holds (a checkpoint saves only what
/// processes hold). Not saved: a restore starts with an empty cache.
public final class FileCache: @unchecked Sendable {
    /// A host file's identity.
    public struct Identity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
    }

    /// A version of a host file's contents, as fstat tells it.
    public struct Version: Equatable, Sendable {
        var size: Int64
        var modification: FileTime
        var change: FileTime
    }

    /// A file changed more recently than this (seconds) is read afresh, not cached.
    static let settleTime: Int64 = 2
    /// Larger files mapped are read by the fault window, not whole.
    static let maximumFileSize: Int64 = 32 << 20
    /// The most memory the cache holds: the container's limit / `limitShare`, at most `maximumBytes`.
    static let maximumBytes: UInt64 = 256 << 20
    static let limitShare: UInt64 = 8

    private struct Entry {
        var version: Version
        var offset: UInt64
        var length: UInt64
        var lastUse: UInt64
    }

    // Guarded by `lock`, taken with no MM lock held; takes the memory file's
    // (and, to fill an entry, the file's data lock).
    private let lock = Mutex<Void>(())
    private var entries: [Identity: Entry] = [:]
    private var useCounter: UInt64 = 0
    private var heldBytes: UInt64 = 0

    /// The `size` bytes of the file `identity` names at `version` (nil for
    /// a file that is no host file) in `memoryFile`: the cached ones, or
    /// fresh pages filled by `fill`, which the cache keeps when the version
    /// has settled and they fit. With `onlyIfKept`, nil instead of pages the
    /// cache would not keep.
    func bytes(of identity: Identity?, at version: Version, size: Int, memoryFile: MemoryFile, onlyIfKept: Bool = false,
               fill: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError) -> ExecutableBytes? {
        guard size > 0, let length = Page.roundUp(UInt64(size)) else { throw .enoexec }
        let now = FileTime.now().seconds
        let settled = max(version.modification.seconds, version.change.seconds) < now - Self.settleTime
        return try lock.withLock { _ throws(SyscallError) -> ExecutableBytes? in
            useCounter += 1
            if let identity, let entry = entries[identity] {
                if entry.version == version, entry.length == length {
                    try memoryFile.retain([entry.offset..<entry.offset + entry.length])
                    entries[identity]?.lastUse = useCounter
                    return try Self.wrap(memoryFile, entry.offset, length, size)
                }
                // The file changed: the old contents are of no more use.
                dropLocked(identity, entry, memoryFile)
            }
            let budget = min(Self.maximumBytes, memoryFile.limit / Self.limitShare)
            let keep = identity != nil && settled && length <= budget
            if onlyIfKept, !keep { return nil }
            let offset = try memoryFile.allocate(length)
            guard let pointer = memoryFile.pointer(at: offset, count: length) else {
                memoryFile.free(offset: offset, length: length)
                throw .efault
            }
            cshim_prefault_for_write(pointer, Int(length))
            do throws(SyscallError) {
                try fill(UnsafeMutableRawBufferPointer(start: pointer, count: size))
            } catch {
                memoryFile.free(offset: offset, length: length)
                throw error
            }
            if let identity, keep {
                while heldBytes + length > budget,
                      let (oldest, entry) = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                    dropLocked(oldest, entry, memoryFile)
                }
                // The cache's own hold, besides the caller's.
                try memoryFile.retain([offset..<offset + length])
                entries[identity] = Entry(version: version, offset: offset, length: length, lastUse: useCounter)
                heldBytes += length
            }
            return try Self.wrap(memoryFile, offset, length, size)
        }
    }

    /// Drops every hold of the cache (the pages processes share stay theirs).
    func releaseAll(memoryFile: MemoryFile) {
        lock.withLock { _ in
            for (identity, entry) in entries { dropLocked(identity, entry, memoryFile) }
        }
    }

    /// Bytes the cache holds.
    var cachedBytes: UInt64 { lock.withLock { _ in heldBytes } }

    private func dropLocked(_ identity: Identity, _ entry: Entry, _ memoryFile: MemoryFile) {
        entries[identity] = nil
        heldBytes -= entry.length
        memoryFile.free(offset: entry.offset, length: entry.length)
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

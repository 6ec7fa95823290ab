import CShim
import State
import Synchronization

/// What bounds an object's pages besides the container's memory limit: a
/// tmpfs mount's `size=`. Called under the SharedMemory's lock: takes only leaf locks.
protocol PageQuota: AnyObject, Sendable {
    /// Takes `count` pages; false when they do not fit.
    func chargePages(_ count: UInt64) -> Bool
    func releasePages(_ count: UInt64)
}

/// Pages shared by every mapping of one object: a MAP_SHARED|MAP_ANONYMOUS
/// region, a host file's shared page cache, or a tmpfs file's data itself
/// (`holdsContents`: nothing to fill a page from, nothing to write back).
/// Keyed by page index within the object; the MemoryFile offsets it holds
/// are owned here, not by any MM.
public final class SharedMemory: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.SharedMemory"
    public static let notSaved: Set<String> = [
        "lock", // a lock
        "mayBeMapped", // host-only: whether a stub may map these pages
        "mappers", // host-only: the MMs whose stubs may map these pages
        "quota", // set again by its owner after load
    ]

    // Guarded by `lock`. Taken under an MM's or a tmpfs inode's lock, never
    // the other way; takes file data locks (the fill) and the MemoryFile's
    // (see VFSLock).
    private let lock = Mutex<Void>(())
    private var pages: [UInt64: UInt64] = [:]
    public private(set) var memoryFile: MemoryFile?
    /// The pages are the object's contents (a tmpfs file), not a cache of them.
    public private(set) var holdsContents = false
    /// Not saved: a stub may map these pages (set when a fault maps one), so
    /// a page dropped from the object is zeroed, never freed for reuse.
    private var mayBeMapped = false
    /// Not saved: the MMs whose stubs may map these pages (a fault noted
    /// them), so a truncation can take the pages past the end out of them.
    private var mappers: [WeakMemoryManager] = []

    private struct WeakMemoryManager {
        weak var mm: MemoryManager?
    }
    /// Not saved (its owner sets it again after a load): what a new page is charged to.
    private var quota: (any PageQuota)?
    /// For a MAP_SHARED|MAP_ANONYMOUS region: how many MMs map it (fork adds
    /// one); the last MM's release frees the pages.
    private var mappingUsers = 1

    public init() {}

    public init(memoryFile: MemoryFile, holdsContents: Bool = false) {
        self.memoryFile = memoryFile
        self.holdsContents = holdsContents
    }

    /// The MemoryFile offset of page `index`, allocating (and filling with
    /// `fill`, e.g. the file's bytes) on first use.
    func page(_ index: UInt64,
              fill: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError) -> UInt64 {
        guard let memoryFile else { throw .enomem }
        return try lock.withLock { _ throws(SyscallError) -> UInt64 in
            if let offset = pages[index] { return offset }
            let offset = try allocateRunLocked(1, memoryFile)
            if let pointer = memoryFile.pointer(at: offset, count: Page.size) {
                do throws(SyscallError) {
                    try fill(UnsafeMutableRawBufferPointer(start: pointer, count: Int(Page.size)))
                } catch {
                    memoryFile.free(offset: offset, length: Page.size)
                    quota?.releasePages(1)
                    throw error
                }
            }
            pages[index] = offset
            return offset
        }
    }

    /// The MemoryFile offsets of pages `indices`, allocating the missing ones
    /// (zeroed; one allocation and one prefault per run of missing pages, as a
    /// large write needs). Stops at the first page that cannot be had: the
    /// offsets got so far, and why it stopped.
    func pages(_ indices: Range<UInt64>) -> (offsets: [UInt64], failure: SyscallError?) {
        guard let memoryFile else { return ([], .enomem) }
        return lock.withLock { _ in
            var offsets: [UInt64] = []
            offsets.reserveCapacity(indices.count)
            var index = indices.lowerBound
            while index < indices.upperBound {
                if let offset = pages[index] {
                    offsets.append(offset)
                    index += 1
                    continue
                }
                var runEnd = index + 1
                while runEnd < indices.upperBound, pages[runEnd] == nil { runEnd += 1 }
                // The whole run at once, or page by page to get as far as fits.
                var next = index
                var chunk = runEnd - index
                while next < runEnd {
                    let length = min(chunk, runEnd - next)
                    do throws(SyscallError) {
                        let start = try allocateRunLocked(length, memoryFile)
                        for page in 0..<length {
                            pages[next + page] = start + page * Page.size
                            offsets.append(start + page * Page.size)
                        }
                        next += length
                    } catch {
                        if length == 1 { return (offsets, error) }
                        chunk = 1
                    }
                }
                index = runEnd
            }
            return (offsets, nil)
        }
    }

    /// `count` contiguous zeroed pages, charged to the quota, faulted in
    /// with one call when there are several (the caller writes them all).
    private func allocateRunLocked(_ count: UInt64, _ memoryFile: MemoryFile) throws(SyscallError) -> UInt64 {
        if let quota, !quota.chargePages(count) { throw SyscallError.enospc }
        let length = count * Page.size
        do throws(SyscallError) {
            let start = try memoryFile.allocate(length)
            if count > 1, let pointer = memoryFile.pointer(at: start, count: length) {
                cshim_prefault_for_write(pointer, Int(length))
            }
            return start
        } catch {
            quota?.releasePages(count)
            throw error
        }
    }

    /// The MemoryFile offset of page `index` if it exists.
    func existingPage(_ index: UInt64) -> UInt64? {
        lock.withLock { _ in pages[index] }
    }

    /// How many pages exist.
    var pageCount: UInt64 { lock.withLock { _ in UInt64(pages.count) } }

    /// Charges new pages to `quota` from now on.
    func setQuota(_ quota: any PageQuota) {
        lock.withLock { _ in self.quota = quota }
    }

    /// Notes that `mm`'s stub maps (some of) these pages from now on.
    func noteMapped(by mm: MemoryManager) {
        lock.withLock { _ in
            mayBeMapped = true
            if !mappers.contains(where: { $0.mm === mm }) {
                mappers.removeAll { $0.mm == nil }
                mappers.append(WeakMemoryManager(mm: mm))
            }
        }
    }

    /// The pages from `index` on are gone (a file truncated): every stub
    /// mapping them lets them go, so a touch there faults and finds them past
    /// the end of the file (SIGBUS), as Linux's unmap_mapping_range has it.
    /// Called with no lock held: it takes the MMs' locks.
    func unmapFromMappers(from index: UInt64) {
        let mms = lock.withLock { _ in mappers.compactMap(\.mm) }
        let (offset, overflow) = index.multipliedReportingOverflow(by: Page.size)
        guard !overflow else { return }
        for mm in mms { mm.unmapSharedPages(of: self, from: offset) }
    }

    /// Drops the pages from `index` on (a file truncated). Pages a stub may
    /// still map are zeroed and kept, not freed: an MM that maps them is
    /// only known while it lives (and a restore's kernel beside its old one
    /// may map them too), so freeing them could hand a stub's page to another.
    func removePages(from index: UInt64) {
        let (dropped, keep, quota) = lock.withLock { _ in
            let dropped = pages.filter { $0.key >= index }
            if !mayBeMapped {
                for key in dropped.keys { pages[key] = nil }
            }
            return (dropped, mayBeMapped, self.quota)
        }
        if keep {
            for offset in dropped.values { memoryFile?.zero(offset: offset, length: Page.size) }
        } else {
            freeRuns(Array(dropped.values))
        }
        if !keep { quota?.releasePages(UInt64(dropped.count)) }
    }

    /// The object shrank to `length` bytes (a host file truncated): the
    /// pages past it go (`removePages`) and out of the stubs that map them
    /// (`unmapFromMappers`), and the part of the last one past it reads as
    /// zero, as Linux's truncate_pagecache leaves them. Called with no lock held.
    func truncate(to length: UInt64) {
        let (pages, tail) = length.quotientAndRemainder(dividingBy: Page.size)
        let kept = tail == 0 ? pages : pages + 1
        removePages(from: kept)
        unmapFromMappers(from: kept)
        guard tail != 0, let offset = existingPage(pages),
              let pointer = memoryFile?.pointer(at: offset + tail, count: Page.size - tail) else { return }
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: Int(Page.size - tail))
    }

    /// Pages present among `indices`, in order: (index, MemoryFile offset).
    func presentPages(in indices: Range<UInt64>) -> [(UInt64, UInt64)] {
        lock.withLock { _ in
            if UInt64(pages.count) < UInt64(indices.count) {
                return pages.filter { indices.contains($0.key) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            }
            return indices.compactMap { index in pages[index].map { (index, $0) } }
        }
    }

    /// Another MM maps this anonymous region (a fork).
    func retainMapping() {
        lock.withLock { _ in mappingUsers += 1 }
    }

    /// An MM mapping this anonymous region is gone; the last one frees it.
    func releaseMapping() {
        let last = lock.withLock { _ in
            mappingUsers -= 1
            return mappingUsers <= 0
        }
        if last { release() }
    }

    /// Frees every page (the last mapping, or the tmpfs file, is gone).
    func release() {
        let (all, quota) = lock.withLock { _ in
            let all = pages
            pages = [:]
            return (all, self.quota)
        }
        freeRuns(Array(all.values))
        quota?.releasePages(UInt64(all.count))
    }

    /// Frees pages, one call per run of adjacent offsets (a large file's
    /// pages mostly are: `pages(_:)` allocates runs).
    private func freeRuns(_ offsets: [UInt64]) {
        guard let memoryFile else { return }
        for run in Self.runs(of: offsets) { memoryFile.free(offset: run.lowerBound, length: UInt64(run.count)) }
    }

    /// The pages at `offsets` as runs of adjacent pages, lowest first; an
    /// offset listed twice is in two runs (it is held twice).
    private static func runs(of offsets: [UInt64]) -> [Range<UInt64>] {
        var runs: [Range<UInt64>] = []
        for offset in offsets.sorted() {
            if let last = runs.last, last.upperBound == offset {
                runs[runs.count - 1] = last.lowerBound..<offset + Page.size
            } else {
                runs.append(offset..<offset + Page.size)
            }
        }
        return runs
    }

    public func save(to sink: inout SaveSink) throws {
        let snapshot = lock.withLock { _ in pages }
        try sink.save("pages", snapshot)
        try sink.save("memoryFile", memoryFile)
        try sink.save("holdsContents", holdsContents)
        try sink.save("mappingUsers", lock.withLock { _ in mappingUsers })
    }

    public func load(from source: inout LoadSource) throws {
        pages = try source.load("pages")
        memoryFile = try source.load("memoryFile")
        holdsContents = try source.load("holdsContents", default: false)
        mappingUsers = try source.load("mappingUsers", default: 1)
        try ImageValidation.require(mappingUsers >= 1, field: "mappingUsers", "\(mappingUsers) users of mapped memory")
        for (index, offset) in pages {
            try ImageValidation.require(Page.isAligned(offset) && index < MemoryManager.maxAddress / Page.size,
                                        field: "pages[\(index)]", "page \(index) at offset \(offset)")
        }
    }

    /// An older image's tmpfs page cache becomes the file's contents.
    func becomeContents() {
        lock.withLock { _ in holdsContents = true }
    }

    /// Every page lies inside the memory file (loaded by now) and is one of
    /// its used pages; this object holds each of them again.
    public func afterLoad() throws {
        let capacity = memoryFile?.capacity ?? 0
        let loaded = lock.withLock { _ in pages }
        for (index, offset) in loaded {
            try ImageValidation.require(offset < capacity, field: "pages[\(index)]",
                                        "offset \(offset) is past the memory file's \(capacity) bytes")
        }
        guard let memoryFile else { return }
        do {
            try memoryFile.retain(Self.runs(of: Array(loaded.values)))
        } catch {
            throw StateError.invalidValue("a page is not one the memory file has allocated", field: "pages")
        }
    }
}

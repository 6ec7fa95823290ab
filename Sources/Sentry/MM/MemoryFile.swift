import CShim
import Glibc
import Platform
import State
import Synchronization

/// Every byte of application memory lives in one memfd: the stubs map ranges of
/// it, the Sentry maps all of it (so copyIn/copyOut are memcpy), and a
/// checkpoint saves its used ranges. This class is that file plus the page
/// allocator over it, and the count of owners of every page: a forked child
/// shares its parent's private pages copy-on-write, so `free` drops one owner
/// and only the last one's frees.
///
/// Past `capacity`, where nothing is allocated, the memfd holds the kernel's
/// own pages (the vDSO and its data page, VDSO.swift), written fresh with
/// every memfd: the vDSO's code is saved (the processes of an image keep
/// the code they started with), the data page is not.
///
/// Saved: the used ranges (what `pages.img` must hold, each page once however
/// many owners it has) and the capacity. Not saved: the host FD and the
/// Sentry's mapping, which `afterLoad` recreates empty for the restore to
/// fill, and the owner counts, which the loaded owners give again.
public final class MemoryFile: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.MemoryFile"
    public static let notSaved: Set<String> = [
        "lock", // a lock
        "searchHint", // a cache: where the next first-fit search starts
        "usedTotal", // recomputed from used on load
        "references", // derived on load: every owner (MemoryManager, SharedMemory) retains its pages in its afterLoad
        "limitBytes", // set from the runtime's configuration at every start and restore
        "chargeFailed", // host-only: whether a charge failed since the last OOM check
        "fd", // host-only: the memfd, a fresh one after load
        "base", // host-only: the memfd's mapping
        "pendingLoad", // host-only: the restore's lazy page loader
        "fileCache", // a cache of host files' pages, which a checkpoint lets go (Kernel.releaseFileCache)
        "recycled", // host-only: free pages, not in `used`, so neither saved nor loaded
        "recycledTotal", // host-only: bytes in `recycled`
    ]

    /// Sparse size of the memfd; only touched pages cost memory.
    public static let defaultCapacity: UInt64 = 1 << 36
    /// The largest capacity a loaded image may ask for (the x86-64 user address space).
    public static let maximumCapacity: UInt64 = 1 << 47

    // Guarded by `lock`. Innermost but for leaves: taken under the MM's,
    // SharedMemory's and file data locks (see VFSLock).
    private let lock = Mutex<Void>(())
    private var used = RangeSet()
    /// How many owners each page has; every page it counts is in `used`.
    /// Pages of `used` it does not count (none, but an image's leaks) are never freed.
    private var references = PageReferences()
    /// Where the next first-fit search starts: allocations mostly grow upward.
    private var searchHint: UInt64 = 0
    /// Bytes in `used`.
    private var usedTotal: UInt64 = 0
    /// Freed pages kept with what they held instead of punched, at most
    /// `recycleLimit` bytes (and a quarter of the limit): punching pages out
    /// of the memfd unmaps them from every mapping (a TLB shootdown on each
    /// CPU) and the next allocation there faults in pages the host clears;
    /// an allocation that lands on kept pages clears them itself. They are
    /// not in `used`: a checkpoint neither saves nor loads them.
    private var recycled = RangeSet()
    private var recycledTotal: UInt64 = 0
    static let recycleLimit: UInt64 = 32 << 20
    public private(set) var capacity: UInt64 = MemoryFile.defaultCapacity
    /// The vDSO's code in the kernel pages: this build's, or the one a
    /// restored image saved (its processes' libc points into it). Set before
    /// the memfd exists, never after.
    private(set) var vdsoText: [UInt8] = VDSOImage.bytes
    /// Not saved: the container's memory limit (the spec's
    /// linux.resources.memory.limit, which the restoring bundle gives again),
    /// over anonymous memory, shared memory and tmpfs data together. An
    /// allocation past it fails, and the failure is noted for the task that
    /// made it: Linux's memory cgroup answers an uncharged page with the OOM
    /// killer, and so does the task (`Task.killIfOutOfMemory`).
    public var limit: UInt64 {
        get { lock.withLock { _ in limitBytes } }
        set { lock.withLock { _ in limitBytes = newValue } }
    }
    private var limitBytes: UInt64 = .max
    private let chargeFailed = Atomic<Bool>(false)

    /// Host-only: the memfd and the Sentry's mapping of it.
    public private(set) var fd: Int32 = -1
    public private(set) var base: UnsafeMutableRawPointer?
    /// While a restore still loads pages in the background: every access to
    /// the file's memory (the Sentry's, a stub mapping, a free) first makes
    /// sure its range is in place. Set once, before any task runs.
    private var pendingLoad: PagesLoader?
    /// Host files' pages kept for exec and read-only private mappings (FileCache.swift).
    let fileCache = FileCache()

    public init() {}

    /// Creates the memfd and maps it into the Sentry.
    public static func create(capacity: UInt64 = MemoryFile.defaultCapacity) throws(SyscallError) -> MemoryFile {
        let file = MemoryFile()
        file.capacity = capacity
        try file.openHostFile()
        return file
    }

    private func openHostFile() throws(SyscallError) {
        let memfd = cshim_memfd_create("runsc-memory", CSHIM_MFD_CLOEXEC)
        guard memfd >= 0 else { throw SyscallError.fromHost(-memfd) }
        let size = capacity + VDSO.size
        guard ftruncate(memfd, off_t(size)) == 0 else {
            let error = SyscallError.hostErrno()
            close(memfd)
            throw error
        }
        let mapping = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0)
        guard let mapping, mapping != MAP_FAILED else {
            let error = SyscallError.hostErrno()
            close(memfd)
            throw error
        }
        VDSO.install(vdsoText, into: mapping + Int(capacity))
        fd = memfd
        lock.withLock { _ in base = mapping }
    }

    /// The file offset of `pointer`, a place in the Sentry's mapping (a
    /// shared futex's key, which must outlive the mapping), or nil outside it.
    func offset(ofMapped pointer: UnsafeMutableRawPointer) -> UInt64? {
        guard let base, pointer >= base,
              let offset = UInt64(exactly: base.distance(to: pointer)), offset < capacity + VDSO.size else { return nil }
        return offset
    }

    /// The file offset of a special mapping's first page.
    func offset(of mapping: SpecialMapping) -> UInt64 {
        capacity + mapping.pages.lowerBound
    }

    /// Runs `body` on the vDSO's data page, unless the memfd is gone (a
    /// discarded kernel; false): under the lock, so `release` cannot unmap it meanwhile.
    func withVDSOParameters(_ body: (UnsafeMutablePointer<cshim_vdso_params>) -> Void) -> Bool {
        lock.withLock { _ in
            guard let base else { return false }
            let page = base + Int(offset(of: .vvar))
            body(page.bindMemory(to: cshim_vdso_params.self, capacity: 1))
            return true
        }
    }

    /// Unmaps and closes the memfd now, for a kernel that will never run (a
    /// decoded image that is then refused): its graph has cycles, so deinit
    /// may never come.
    public func release() {
        pendingLoad?.stop()
        let mapping = lock.withLock { _ in
            defer { base = nil }
            return base
        }
        if let mapping { munmap(mapping, Int(capacity + VDSO.size)) }
        if fd >= 0 {
            AddressSpace.memoryFileClosing(fd)
            close(fd)
        }
        fd = -1
    }

    /// Its container ended (init exited): the stub pool kills its idle stubs
    /// of this file and keeps none after, as when it closes. A kernel's
    /// graph has cycles, so a host process that runs kernels one after
    /// another (the tests) may never see it close, and each idle stub holds
    /// all its memory.
    public func containerEnded() {
        let descriptor = lock.withLock { _ in base == nil ? -1 : fd }
        if descriptor >= 0 { AddressSpace.memoryFileClosing(descriptor) }
    }

    deinit {
        release()
    }

    /// Whether `length` more bytes fit the limit now: for allocations made
    /// ahead of need, which must not count as a failed charge (the OOM kill).
    func hasRoom(for length: UInt64) -> Bool {
        lock.withLock { _ in length <= limitBytes && usedTotal <= limitBytes - length }
    }

    /// Allocates `length` bytes (a page multiple) of zeroed memory; returns
    /// the file offset. `cleared: false` is for a caller that writes every
    /// byte before anything reads one (a copy-on-write copy): kept pages are
    /// then handed over as they are.
    public func allocate(_ length: UInt64, cleared: Bool = true) throws(SyscallError) -> UInt64 {
        guard length > 0, Page.isAligned(length) else { throw .einval }
        let (offset, stale) = try lock.withLock { _ throws(SyscallError) -> (UInt64, [Range<UInt64>]) in
            guard length <= limitBytes, usedTotal <= limitBytes - length else {
                chargeFailed.store(true, ordering: .relaxed)
                throw SyscallError.enomem
            }
            let offset = used.firstGap(length: length, from: searchHint, limit: capacity)
                ?? used.firstGap(length: length, from: 0, limit: capacity)
            guard let offset else { throw SyscallError.enomem }
            let range = offset..<offset + length
            used.insert(range)
            references.retain(range)
            usedTotal += length
            searchHint = offset + length
            let stale = recycled.intersection(with: range)
            if !stale.isEmpty { recycledTotal -= recycled.remove(range) }
            return (offset, stale)
        }
        // The caller owns them now: cleared before it sees them.
        if cleared, let base {
            for range in stale { memset(base + Int(range.lowerBound), 0, range.count) }
        }
        return offset
    }

    /// Drops one owner's hold on pages; those it was the last owner of go
    /// back to the allocator, kept for the next allocations (`recycled`)
    /// or given back to the host: punched holes read as zero when they are
    /// allocated again.
    public func free(offset: UInt64, length: UInt64) {
        guard length > 0 else { return }
        let (end, overflow) = offset.addingReportingOverflow(length)
        let freed = lock.withLock { _ in references.release(offset..<(overflow ? UInt64.max : end)) }
        guard !freed.isEmpty else { return }
        // Before the pages can be allocated again: a restore's load must not
        // land in them (what it has not reached of the range it drops).
        for range in freed { pendingLoad?.discard(range) }
        let punched = lock.withLock { _ -> [Range<UInt64>] in
            let keep = min(MemoryFile.recycleLimit, limitBytes / 4)
            var punched: [Range<UInt64>] = []
            for range in freed {
                let length = UInt64(range.count)
                if recycledTotal <= keep, length <= keep - recycledTotal {
                    usedTotal -= used.remove(range)
                    recycled.insert(range)
                    recycledTotal += length
                } else {
                    punched.append(range)
                }
            }
            searchHint = min(searchHint, freed[0].lowerBound)
            return punched
        }
        guard !punched.isEmpty else { return }
        // Punched while still in `used`, so no allocation takes them first.
        for range in punched { punch(range) }
        lock.withLock { _ in
            for range in punched { usedTotal -= used.remove(range) }
        }
    }

    /// Adds an owner to every page of `ranges`, which must all be allocated
    /// (EFAULT, and nothing changes, if one is not): a fork sharing its
    /// private pages with the child, and each owner taking its pages again
    /// after a load (pages shared in the image are shared after it, and a
    /// page two owners claim is freed only when both let go).
    public func retain(_ ranges: [Range<UInt64>]) throws(SyscallError) {
        try lock.withLock { _ throws(SyscallError) in
            for range in ranges where !used.contains(range) { throw SyscallError.efault }
            for range in ranges { references.retain(range) }
        }
    }

    /// The parts of `range` that more than one owner holds: a write by one
    /// of them must copy first.
    func sharedRanges(in range: Range<UInt64>) -> [Range<UInt64>] {
        lock.withLock { _ in references.shared(in: range) }
    }

    /// Whether any page of `range` has more than one owner.
    func anyShared(in range: Range<UInt64>) -> Bool {
        lock.withLock { _ in references.anyShared(in: range) }
    }

    /// How many owners the page at `offset` has (0: free, or leaked by an image).
    func referenceCount(at offset: UInt64) -> UInt64 {
        lock.withLock { _ in references.count(at: offset) }
    }

    /// Zeroes allocated pages (punches them: they cost nothing until touched)
    /// without freeing them.
    public func zero(offset: UInt64, length: UInt64) {
        guard length > 0, offset < capacity, length <= capacity - offset else { return }
        pendingLoad?.discard(offset..<offset + length)
        punch(offset..<offset + length)
    }

    /// Gives `range` (inside the capacity) back to the host: it reads as zero after.
    private func punch(_ range: Range<UInt64>) {
        if let base { _ = madvise(base + Int(range.lowerBound), range.count, MADV_REMOVE) }
    }

    /// The Sentry's pointer to the `count` bytes at file offset `offset`,
    /// once they hold their contents; nil if outside the file or if a
    /// restore could not load them.
    public func pointer(at offset: UInt64, count: UInt64) -> UnsafeMutableRawPointer? {
        guard let base else { return nil }
        if offset >= capacity {
            // The kernel's pages: never loaded from an image.
            guard offset - capacity < VDSO.size, count <= VDSO.size - (offset - capacity) else { return nil }
            return base + Int(offset)
        }
        guard ensureLoaded(offset: offset, length: count) else { return nil }
        return base + Int(offset)
    }

    /// Copies `source` to `destination`, a piece of the Sentry's mapping
    /// (`pointer(at:count:)`). A piece of `writeThroughMinimum` bytes or
    /// more goes through the memfd with pwrite: the kernel fills the file's
    /// pages directly, where memcpy takes a page fault per page the mapping
    /// has not touched (an exec's segments: most of its load time). Both
    /// write the same pages, which the mapping shows.
    public func copy(_ source: UnsafeRawPointer, to destination: UnsafeMutableRawBufferPointer) {
        guard let target = destination.baseAddress else { return }
        if destination.count >= Self.writeThroughMinimum, let base, target >= base {
            var done = 0
            let offset = target - base
            while done < destination.count {
                let written = pwrite(fd, source + done, destination.count - done, off_t(offset + done))
                if written <= 0 { break }
                done += written
            }
            // Whatever pwrite did not take (it should take all) is copied as before.
            if done < destination.count { memcpy(target + done, source + done, destination.count - done) }
            return
        }
        memcpy(target, source, destination.count)
    }

    /// From this many bytes a copy into the MemoryFile goes through pwrite (`copy`).
    static let writeThroughMinimum = 64 << 10

    /// Hands the rest of a restore's pages to `loader`, which the caller
    /// starts; until it is done, accesses wait for the ranges they touch.
    public func beginLoading(_ loader: PagesLoader) {
        pendingLoad = loader
    }

    /// Makes sure `offset..<offset+length` holds its restored contents
    /// (loading it now if the background has not got there); false if it
    /// cannot be loaded (the loader has logged why).
    public func ensureLoaded(offset: UInt64, length: UInt64) -> Bool {
        guard let loader = pendingLoad, !loader.isComplete else { return true }
        let (end, overflow) = offset.addingReportingOverflow(length)
        do {
            try loader.ensureLoaded(offset..<(overflow ? UInt64.max : end))
            return true
        } catch {
            return false
        }
    }

    /// Waits for (and helps) a restore's background load to finish: a
    /// checkpoint saves the whole file.
    public func finishLoading() throws(ImageError) {
        guard let loader = pendingLoad, !loader.isComplete else { return }
        try loader.finishLoading()
    }

    /// The used ranges, for the checkpoint's pages image.
    public var usedRanges: [Range<UInt64>] { lock.withLock { _ in used.ranges } }

    /// Bytes currently allocated.
    public var usedBytes: UInt64 { lock.withLock { _ in usedTotal } }
    /// Bytes of freed pages kept for reuse (`recycled`).
    var recycledBytes: UInt64 { lock.withLock { _ in recycledTotal } }

    /// Whether an allocation failed on the memory limit since the last call
    /// (and forgets it): the caller's process is the one to kill.
    public func takeChargeFailure() -> Bool {
        // Every task asks at every stop: a plain load keeps the cache line
        // shared; only a failure is exchanged.
        chargeFailed.load(ordering: .relaxed) && chargeFailed.exchange(false, ordering: .relaxed)
    }

    public func save(to sink: inout SaveSink) throws {
        let ranges = usedRanges
        try sink.save("capacity", capacity)
        try sink.save("used", ranges.flatMap { [$0.lowerBound, $0.upperBound] })
        try sink.save("vdsoText", vdsoText)
        try sink.save("vdsoLayout", VDSO.layoutVersion)
    }

    public func load(from source: inout LoadSource) throws {
        capacity = try source.load("capacity")
        guard capacity > 0, capacity <= MemoryFile.maximumCapacity, Page.isAligned(capacity) else {
            throw StateError.invalidValue("\(capacity) is not a page multiple in 1...\(MemoryFile.maximumCapacity)", field: "capacity")
        }
        let flat: [UInt64] = try source.load("used")
        guard flat.count % 2 == 0 else { throw StateError.invalidValue("an odd count of bounds", field: "used") }
        var set = RangeSet()
        for index in stride(from: 0, to: flat.count, by: 2) {
            let lower = flat[index], upper = flat[index + 1]
            guard lower <= upper, upper <= capacity, Page.isAligned(lower), Page.isAligned(upper) else {
                throw StateError.invalidValue("range \(lower)..<\(upper) is not page-aligned within the capacity", field: "used[\(index / 2)]")
            }
            set.insert(lower..<upper)
        }
        used = set
        usedTotal = set.totalLength
        // Older images have neither: their processes run this build's vDSO, as they always did.
        if source.contains("vdsoLayout") {
            let layout: UInt64 = try source.load("vdsoLayout")
            guard layout == VDSO.layoutVersion else {
                throw StateError.invalidValue("the vDSO data page layout version \(layout) is not this build's "
                                              + "\(VDSO.layoutVersion): the image's vDSO code would misread it",
                                              field: "vdsoLayout")
            }
        }
        if source.contains("vdsoText") {
            let text: [UInt8] = try source.load("vdsoText")
            try ImageValidation.require(!text.isEmpty && UInt64(text.count) <= VDSO.textSize, field: "vdsoText",
                                        "\(text.count) bytes of vDSO code, not 1...\(VDSO.textSize)")
            vdsoText = text
        }
    }

    /// A fresh, empty memfd of the saved capacity; the restore writes the pages into it.
    public func afterLoad() throws {
        do { try openHostFile() } catch { throw StateError.invalidValue("cannot create the memfd of this capacity: \(error)", field: "capacity") }
    }
}

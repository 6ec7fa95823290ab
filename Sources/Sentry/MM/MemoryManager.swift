import Glibc
import State
import Synchronization

/// An application address space as the Sentry keeps it: the VMAs, the private
/// pages behind them (MemoryFile offsets), brk, and where argv and envp live.
///
/// Pages are allocated when first touched (by the application, through a
/// fault, or by the Sentry through copyIn/copyOut) and mapped into the stub
/// only on a fault, so the stub's mappings are a cache that a restore starts
/// empty. Private pages may be shared with other MMs (a fork): the stub maps
/// those without write, and the first write copies them (copy-on-write).
/// Saved: everything but the stub and what it maps.
public final class MemoryManager: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.MemoryManager"
    public static let notSaved: Set<String> = [
        "lock", // a lock
        "addressSpace", // host-only: the stub process, made again when a task runs
        "mappedInStub", // host-only: what the stub has mapped
        "copyOnWriteInStub", // host-only: what the stub maps without write for copy-on-write
        "addressSpaceUsers", // host-only: running tasks using the stub
        "sequentialCopyAddress", // a hint for the next copy-on-write fault, which a restore starts without
        "startupAddresses", // a hint for an exec's first run, long past when a checkpoint can be taken
    ]
    public static let savedAs: [String: String] = ["argvRange": "argv", "envRange": "env"]

    /// Lowest address a mapping may use (vm.mmap_min_addr).
    public static let minAddress: UInt64 = 0x10000
    /// One past the highest user address: the platform's stub page sits there.
    public static let maxAddress: UInt64 = 0x7fff_ffff_e000
    /// Linux's default vm.max_map_count.
    public static let maxMapCount = 65530
    /// Faults map this much around the faulting page, so that sequential
    /// touches of a large mapping cost one trap per window, not per page.
    static let faultWindow: UInt64 = 64 * Page.size

    // Guarded by `lock`. Lock order (see VFSLock): may be taken under the VFS
    // lock (procfs), never takes it (a file's name is asked before or after);
    // takes SharedMemory's, file data locks, the FileCache's (and waits for
    // another MM's fill of a file it caches: a fill takes no MM lock) and
    // the MemoryFile's.
    let lock = Mutex<Void>(())
    var vmas: [VMA] = []
    var privatePages: [PrivatePages] = []
    public internal(set) var memoryFile: MemoryFile?
    /// Top-down mmap allocations start below this.
    public internal(set) var mmapBase: UInt64 = 0x7f00_0000_0000
    public internal(set) var brkStart: UInt64 = 0
    public internal(set) var brk: UInt64 = 0
    public internal(set) var stackTop: UInt64 = 0
    public internal(set) var argvRange: Range<UInt64> = 0..<0
    public internal(set) var envRange: Range<UInt64> = 0..<0
    /// The auxiliary vector as given to the application, for /proc/self/auxv.
    public internal(set) var auxv: [UInt64] = []
    /// The path of the executable, for /proc/self/exe.
    public internal(set) var executablePath = ""
    /// membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) was called
    /// (Linux's mm->membarrier_state); a fork's or exec's new MM starts without.
    var membarrierPrivateRegistered = false

    /// Host-only: the stub this MM is mapped into, what it has mapped, and
    /// how many running tasks use it.
    var addressSpace: (any AddressSpaceMapper)?
    var mappedInStub = RangeSet()
    /// Private pages the stub maps without write whatever their VMA allows,
    /// because another MM may share them (a subset of `mappedInStub`): a
    /// fault on one in a writable VMA is a write to copy, not a violation.
    var copyOnWriteInStub = RangeSet()
    var addressSpaceUsers = 0
    /// Where a write fault continues the last copy-on-write copy in address
    /// order (its end): such a fault copies a whole fault window, any other
    /// only its own page, as Linux does.
    var sequentialCopyAddress: UInt64 = 0
    /// Where an exec's program starts (its and its interpreter's segments),
    /// mapped up front at its first run; emptied then.
    var startupAddresses: [UInt64] = []

    public init() {}

    public init(memoryFile: MemoryFile) {
        self.memoryFile = memoryFile
    }

    /// A task starts running in this MM and holds a reference to its address
    /// space until `releaseAddressSpace()`. The first one creates it with
    /// `create` (the platform's address space starts its own owner thread);
    /// a restore starts with none. Each user then makes its own stub thread
    /// in it (`Context`): this is the one place a task joins the MM's
    /// address space, and the last one out ends it.
    public func acquireAddressSpace<Failure: Error>(
        _ create: () throws(Failure) -> any AddressSpaceMapper
    ) throws(Failure) -> any AddressSpaceMapper {
        try lock.withLock { _ throws(Failure) -> any AddressSpaceMapper in
            if let addressSpace {
                addressSpaceUsers += 1
                return addressSpace
            }
            let created = try create()
            installLocked(created)
            return created
        }
    }

    /// Makes `space` this MM's address space with one user. Caller holds `lock`.
    private func installLocked(_ space: any AddressSpaceMapper) {
        addressSpace = space
        addressSpaceUsers = 1
        mappedInStub = RangeSet()
        copyOnWriteInStub = RangeSet()
    }

    /// A task stops using this MM's address space (it exited or exec'd): the
    /// last one ends the stub.
    public func releaseAddressSpace() {
        let last: (any AddressSpaceMapper)? = lock.withLock { _ in
            addressSpaceUsers -= 1
            guard addressSpaceUsers <= 0, let space = addressSpace else { return nil }
            addressSpace = nil
            addressSpaceUsers = 0
            mappedInStub = RangeSet()
            copyOnWriteInStub = RangeSet()
            return space
        }
        last?.release()
    }

    /// exec's hand-over of the stub to the new MM `next` (which has none
    /// yet) when the calling task is this address space's last user: the
    /// stub is emptied (everything below the stub page unmapped, as a
    /// recycled stub is) and the task's stub thread runs on in it, with the
    /// task as `next`'s one user. That saves a new stub (its owner thread,
    /// attach, a new stub thread) and recycling this one. False, changing
    /// nothing this MM counts, when others use it or it cannot be emptied.
    /// `next`'s lock is held throughout, so the check that it has no address
    /// space and the install are one step (`next` is the exec's new MM, which
    /// no other path locks before this one).
    public func handOverAddressSpace(to next: MemoryManager) -> Bool {
        next.lock.withLock { _ -> Bool in
            guard next.addressSpace == nil else { return false }
            let space: (any AddressSpaceMapper)? = lock.withLock { _ in
                guard addressSpaceUsers == 1, let space = addressSpace, (try? space.unmapAll()) != nil else { return nil }
                addressSpace = nil
                addressSpaceUsers = 0
                mappedInStub = RangeSet()
                copyOnWriteInStub = RangeSet()
                return space
            }
            guard let space else { return false }
            next.installLocked(space)
            return true
        }
    }

    /// A snapshot of the VMAs, lowest first (for /proc/self/maps).
    public var mappings: [VMA] { lock.withLock { _ in vmas } }

    /// Bytes of address space mapped (what RLIMIT_AS bounds).
    public var mappedBytes: UInt64 { lock.withLock { _ in mappedBytesLocked } }

    var mappedBytesLocked: UInt64 { vmas.reduce(0) { $0 + $1.length } }

    /// A snapshot of the private page runs, lowest first.
    public var privatePageRuns: [PrivatePages] { lock.withLock { _ in privatePages } }

    /// Records where the ELF loader put things.
    public func setLayout(brkStart: UInt64, stackTop: UInt64, mmapBase: UInt64,
                          argv: Range<UInt64>, env: Range<UInt64>, auxv: [UInt64], executablePath: String,
                          startupAddresses: [UInt64] = []) {
        lock.withLock { _ in
            self.startupAddresses = startupAddresses
            self.brkStart = brkStart
            self.brk = brkStart
            self.stackTop = stackTop
            self.mmapBase = mmapBase
            self.argvRange = argv
            self.envRange = env
            self.auxv = auxv
            self.executablePath = executablePath
        }
    }

    /// Frees every page and mapping (the last task using this MM exited).
    public func release() {
        let shared: [SharedMemory] = lock.withLock { _ in
            for run in privatePages { memoryFile?.free(offset: run.offset, length: run.end - run.start) }
            privatePages = []
            var shared: [SharedMemory] = []
            for vma in vmas {
                if let memory = vma.sharedMemory, vma.isAnonymous, !shared.contains(where: { $0 === memory }) {
                    shared.append(memory)
                }
            }
            vmas = []
            mappedInStub = RangeSet()
            copyOnWriteInStub = RangeSet()
            return shared
        }
        for memory in shared { memory.releaseMapping() }
    }

    // MARK: Saving

    public func save(to sink: inout SaveSink) throws {
        let state = lock.withLock { _ in
            (vmas, privatePages, memoryFile, mmapBase, brkStart, brk, stackTop, argvRange, envRange, auxv, executablePath)
        }
        try sink.save("vmas", state.0)
        try sink.save("privatePages", state.1)
        try sink.save("memoryFile", state.2)
        try sink.save("mmapBase", state.3)
        try sink.save("brkStart", state.4)
        try sink.save("brk", state.5)
        try sink.save("stackTop", state.6)
        try sink.save("argv", [state.7.lowerBound, state.7.upperBound])
        try sink.save("env", [state.8.lowerBound, state.8.upperBound])
        try sink.save("auxv", state.9)
        try sink.save("executablePath", state.10)
        try sink.save("membarrierPrivateRegistered", lock.withLock { _ in membarrierPrivateRegistered })
    }

    public func load(from source: inout LoadSource) throws {
        vmas = try source.load("vmas")
        privatePages = try source.load("privatePages")
        memoryFile = try source.load("memoryFile")
        mmapBase = try source.load("mmapBase")
        brkStart = try source.load("brkStart")
        brk = try source.load("brk")
        stackTop = try source.load("stackTop")
        argvRange = try Self.loadRange(&source, "argv")
        envRange = try Self.loadRange(&source, "env")
        auxv = try source.load("auxv")
        executablePath = try source.load("executablePath")
        membarrierPrivateRegistered = try source.load("membarrierPrivateRegistered", default: false)
        for (previous, next) in zip(vmas, vmas.dropFirst()) where previous.end > next.start {
            throw StateError.invalidValue("VMAs overlap at \(next.start)", field: "vmas")
        }
        for (previous, next) in zip(privatePages, privatePages.dropFirst()) where previous.end > next.start {
            throw StateError.invalidValue("private pages overlap at \(next.start)", field: "privatePages")
        }
        for (name, address) in [("mmapBase", mmapBase), ("brkStart", brkStart), ("brk", brk), ("stackTop", stackTop),
                                ("argv", argvRange.upperBound), ("env", envRange.upperBound)] {
            try ImageValidation.require(address <= MemoryManager.maxAddress, field: name,
                                        "0x\(String(address, radix: 16)) is not a user address")
        }
        try ImageValidation.require(brkStart <= brk, field: "brk", "the break is below its start")
        if !executablePath.isEmpty { try ImageValidation.absolutePath(executablePath, field: "executablePath") }
    }

    /// Private pages lie inside the memory file (loaded by now) and are
    /// among its used pages; this MM holds them again, so pages that MMs
    /// shared copy-on-write before the checkpoint are shared after it.
    public func afterLoad() throws {
        let (pages, file) = lock.withLock { _ in (privatePages, memoryFile) }
        let capacity = file?.capacity ?? 0
        for (index, run) in pages.enumerated() {
            try ImageValidation.require(run.offset + (run.end - run.start) <= capacity, field: "privatePages[\(index)]",
                                        "offset \(run.offset) is past the memory file's \(capacity) bytes")
        }
        guard let file else { return }
        do {
            try file.retain(pages.map(\.backing))
        } catch {
            throw StateError.invalidValue("private pages not allocated in the memory file", field: "privatePages")
        }
    }

    private static func loadRange(_ source: inout LoadSource, _ name: String) throws -> Range<UInt64> {
        let bounds: [UInt64] = try source.load(name)
        guard bounds.count == 2, bounds[0] <= bounds[1] else {
            throw StateError.invalidValue("not a range", field: name)
        }
        return bounds[0]..<bounds[1]
    }
}

// MARK: - VMA bookkeeping (lock held)

extension MemoryManager {
    /// Index of the first VMA whose end is above `address`.
    func firstVMAIndexLocked(endingAfter address: UInt64) -> Int {
        var low = 0, high = vmas.count
        while low < high {
            let mid = (low + high) / 2
            if vmas[mid].end > address { high = mid } else { low = mid + 1 }
        }
        return low
    }

    func vmaIndexLocked(containing address: UInt64) -> Int? {
        let index = firstVMAIndexLocked(endingAfter: address)
        return index < vmas.count && vmas[index].start <= address ? index : nil
    }

    func isFreeLocked(_ range: Range<UInt64>) -> Bool {
        let index = firstVMAIndexLocked(endingAfter: range.lowerBound)
        return index >= vmas.count || vmas[index].start >= range.upperBound
    }

    /// Whether every page of `range` is inside some VMA.
    func isFullyMappedLocked(_ range: Range<UInt64>) -> Bool {
        var cursor = range.lowerBound
        var index = firstVMAIndexLocked(endingAfter: cursor)
        while cursor < range.upperBound {
            guard index < vmas.count, vmas[index].start <= cursor else { return false }
            cursor = vmas[index].end
            index += 1
        }
        return true
    }

    /// The highest free range of `length` below `mmapBase` (top-down, as Linux).
    func findGapLocked(length: UInt64) -> UInt64? {
        var ceiling = mmapBase
        var index = firstVMAIndexLocked(endingAfter: ceiling) - 1
        if index + 1 < vmas.count, vmas[index + 1].start < ceiling { ceiling = vmas[index + 1].start }
        while true {
            let floor = index >= 0 ? vmas[index].end : MemoryManager.minAddress
            if ceiling >= floor, ceiling - floor >= length { return ceiling - length }
            guard index >= 0 else { return nil }
            ceiling = min(ceiling, vmas[index].start)
            index -= 1
        }
    }

    /// Inserts `vma` into a free range, merging with neighbours that continue it.
    func insertVMALocked(_ vma: VMA) {
        var index = firstVMAIndexLocked(endingAfter: vma.start)
        vmas.insert(vma, at: index)
        if index + 1 < vmas.count, vmas[index].canMerge(with: vmas[index + 1]) {
            vmas[index].end = vmas[index + 1].end
            vmas.remove(at: index + 1)
        }
        if index > 0, vmas[index - 1].canMerge(with: vmas[index]) {
            vmas[index - 1].end = vmas[index].end
            vmas.remove(at: index)
            index -= 1
        }
    }

    /// Removes every mapping in `range`: splits VMAs at its edges, frees the
    /// private pages, unmaps the stub.
    func removeRangeLocked(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        var index = firstVMAIndexLocked(endingAfter: range.lowerBound)
        var replacement: [VMA] = []
        let first = index
        while index < vmas.count, vmas[index].start < range.upperBound {
            let vma = vmas[index]
            if vma.start < range.lowerBound { replacement.append(vma.clipped(to: vma.start..<range.lowerBound)) }
            if vma.end > range.upperBound { replacement.append(vma.clipped(to: range.upperBound..<vma.end)) }
            index += 1
        }
        vmas.replaceSubrange(first..<index, with: replacement)
        // The stub lets go first: a freed page may be another MM's at once
        // (MemoryFile keeps freed pages for reuse), while this MM's other
        // threads still run in the stub.
        unmapStubLocked(range)
        freePrivatePagesLocked(in: range)
    }

    /// `memory` lost its pages from byte `offset` on (a truncation): the
    /// stub stops mapping them wherever this MM maps them shared, so the next
    /// touch faults and finds them past the end of the file.
    func unmapSharedPages(of memory: SharedMemory, from offset: UInt64) {
        lock.withLock { _ in
            for vma in vmas where vma.sharedMemory === memory {
                let (objectEnd, overflow) = vma.sharedOffset.addingReportingOverflow(vma.length)
                guard overflow || objectEnd > offset else { continue }
                let start = offset > vma.sharedOffset ? vma.start + (offset - vma.sharedOffset) : vma.start
                for mapped in mappedInStub.intersection(with: start..<vma.end) { unmapStubLocked(mapped) }
            }
        }
    }

    func unmapStubLocked(_ range: Range<UInt64>) {
        guard mappedInStub.overlaps(range) else { return }
        mappedInStub.remove(range)
        copyOnWriteInStub.remove(range)
        try? addressSpace?.unmap(address: range.lowerBound, length: range.upperBound - range.lowerBound)
    }

    /// Splits VMAs so that `range`'s edges are VMA boundaries; returns the
    /// indices of the VMAs inside `range`.
    func splitLocked(at range: Range<UInt64>) -> Range<Int> {
        for edge in [range.lowerBound, range.upperBound] {
            if let index = vmaIndexLocked(containing: edge), vmas[index].start < edge {
                let vma = vmas[index]
                vmas[index] = vma.clipped(to: vma.start..<edge)
                vmas.insert(vma.clipped(to: edge..<vma.end), at: index + 1)
            }
        }
        let first = firstVMAIndexLocked(endingAfter: range.lowerBound)
        var last = first
        while last < vmas.count, vmas[last].start < range.upperBound { last += 1 }
        return first..<last
    }

    /// Merges neighbours that became identical (after mprotect).
    func coalesceLocked(around indices: Range<Int>) {
        var index = max(indices.lowerBound - 1, 0)
        var end = min(indices.upperBound + 1, vmas.count)
        while index + 1 < end {
            if vmas[index].canMerge(with: vmas[index + 1]) {
                vmas[index].end = vmas[index + 1].end
                vmas.remove(at: index + 1)
                end -= 1
            } else {
                index += 1
            }
        }
    }
}

// MARK: - Private pages (lock held)

extension MemoryManager {
    func firstPrivateIndexLocked(endingAfter address: UInt64) -> Int {
        var low = 0, high = privatePages.count
        while low < high {
            let mid = (low + high) / 2
            if privatePages[mid].end > address { high = mid } else { low = mid + 1 }
        }
        return low
    }

    func freePrivatePagesLocked(in range: Range<UInt64>) {
        var index = firstPrivateIndexLocked(endingAfter: range.lowerBound)
        let first = index
        var replacement: [PrivatePages] = []
        while index < privatePages.count, privatePages[index].start < range.upperBound {
            let run = privatePages[index]
            let cutStart = max(run.start, range.lowerBound), cutEnd = min(run.end, range.upperBound)
            memoryFile?.free(offset: run.offset + (cutStart - run.start), length: cutEnd - cutStart)
            if run.start < cutStart {
                replacement.append(PrivatePages(start: run.start, end: cutStart, offset: run.offset))
            }
            if run.end > cutEnd {
                replacement.append(PrivatePages(start: cutEnd, end: run.end, offset: run.offset + (cutEnd - run.start)))
            }
            index += 1
        }
        privatePages.replaceSubrange(first..<index, with: replacement)
    }

    /// Gives every page of `range` (inside the private `vma`) MemoryFile
    /// backing: zero for anonymous memory, the file's bytes for a file
    /// mapping. `cachedOnly`: only the pages the file cache gives, which
    /// cost no read and no new memory.
    func populatePrivateLocked(_ range: Range<UInt64>, in vma: VMA, cachedOnly: Bool = false) throws(SyscallError) {
        guard let memoryFile else { throw .enomem }
        // What an earlier fault learned of the file is in the VMA as it stands (callers pass a copy).
        let vmaIndex = vmaIndexLocked(containing: range.lowerBound)
        var sharesCachedPages = vma.mappedFile != nil && !vma.protection.contains(.write)
            && vmaIndex.map { !vmas[$0].fileNotCached } ?? false
        var cursor = range.lowerBound
        var index = firstPrivateIndexLocked(endingAfter: cursor)
        while cursor < range.upperBound {
            if index < privatePages.count, privatePages[index].start <= cursor {
                cursor = privatePages[index].end
                index += 1
                continue
            }
            let gapEnd = min(range.upperBound, index < privatePages.count ? privatePages[index].start : range.upperBound)
            if sharesCachedPages, let file = vma.mappedFile, !file.hasSharedPageCache {
                switch try sharedFilePagesLocked(file, at: vma.fileOffset + (cursor - vma.start), length: gapEnd - cursor,
                                                 memoryFile) {
                case .pages(let offset, let length):
                    insertPrivateLocked(PrivatePages(start: cursor, end: cursor + length, offset: offset), at: index)
                    cursor += length
                    index = firstPrivateIndexLocked(endingAfter: cursor)
                    continue
                case .notKept:
                    sharesCachedPages = false
                    if let vmaIndex { vmas[vmaIndex].fileNotCached = true }
                case .none:
                    break
                }
            }
            if cachedOnly {
                cursor = gapEnd
                continue
            }
            let length = gapEnd - cursor
            let offset = try memoryFile.allocate(length)
            if let file = vma.mappedFile, let pointer = memoryFile.pointer(at: offset, count: length) {
                let buffer = UnsafeMutableRawBufferPointer(start: pointer, count: Int(length))
                do {
                    try Self.fill(buffer, from: file, at: vma.fileOffset + (cursor - vma.start), privately: true)
                } catch {
                    memoryFile.free(offset: offset, length: length)
                    throw error
                }
            }
            insertPrivateLocked(PrivatePages(start: cursor, end: gapEnd, offset: offset), at: index)
            index = firstPrivateIndexLocked(endingAfter: gapEnd)
            cursor = gapEnd
        }
    }

    /// Backs `range` (page-aligned, inside one private VMA) with the memory
    /// file's pages from `memoryOffset`, which this MM holds from now on
    /// besides their other owners: shared copy-on-write, as after a fork
    /// (exec's read-only segments, from the pages its cache keeps of the file).
    func sharePages(_ range: Range<UInt64>, memoryOffset: UInt64) throws(SyscallError) {
        try lock.withLock { _ throws(SyscallError) in
            guard let memoryFile, let index = vmaIndexLocked(containing: range.lowerBound),
                  vmas[index].hasPrivatePages, vmas[index].end >= range.upperBound,
                  Page.isAligned(range.lowerBound), Page.isAligned(range.upperBound),
                  Page.isAligned(memoryOffset) else { throw .einval }
            try memoryFile.retain([memoryOffset..<memoryOffset + UInt64(range.count)])
            unmapStubLocked(range)
            freePrivatePagesLocked(in: range)
            insertPrivateLocked(PrivatePages(start: range.lowerBound, end: range.upperBound, offset: memoryOffset),
                                at: firstPrivateIndexLocked(endingAfter: range.lowerBound))
        }
    }

    /// What the file cache gives a private mapping without write.
    private enum SharedFilePages {
        /// Its pages, held once more for this MM.
        case pages(offset: UInt64, length: UInt64)
        /// None for this version of the file (no host file, too large,
        /// changed just now, larger than the cache): the mapping stops asking.
        case notKept
        /// None now (past the file's last page, or another version being read).
        case none
    }

    /// The file cache's pages of `file` from `fileOffset` (a page boundary),
    /// at most `length` bytes of them; pages it does not give are read from
    /// the file into pages of their own. May wait for another MM's fill of
    /// the file.
    private func sharedFilePagesLocked(_ file: any MappableFile, at fileOffset: UInt64, length: UInt64,
                                       _ memoryFile: MemoryFile) throws(SyscallError) -> SharedFilePages {
        guard let (identity, version) = try file.cacheVersion(), version.size <= FileCache.maximumFileSize,
              let size = Int(exactly: version.size), size > 0, let fileEnd = Page.roundUp(UInt64(size)),
              memoryFile.fileCache.keeps(identity, at: version, length: fileEnd, memoryFile: memoryFile) else {
            return .notKept
        }
        guard fileOffset < fileEnd else { return .none }
        let cached = try memoryFile.fileCache.bytes(of: identity, at: version, size: size, memoryFile: memoryFile,
                                                    onlyIfKept: true, kept: true, source: file) { buffer throws(SyscallError) in
            try Self.fill(buffer, from: file, at: 0)
        }
        guard let cached, let base = cached.memoryOffset else { return .none }
        let count = min(length, fileEnd - fileOffset)
        try memoryFile.retain([base + fileOffset..<base + fileOffset + count])
        return .pages(offset: base + fileOffset, length: count)
    }

    /// Reads a file's bytes into fresh pages; past the end of file reads as
    /// zero. `privately`: the bytes as read shows them, for a private copy
    /// (`readForPrivateMapping`), not the host file's alone.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer, from file: any MappableFile,
                     at offset: UInt64, privately: Bool = false) throws(SyscallError) {
        var done = 0
        while done < buffer.count {
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            let count = privately ? try file.readForPrivateMapping(into: rest, at: offset + UInt64(done))
                                  : try file.readForMapping(into: rest, at: offset + UInt64(done))
            if count <= 0 { break }
            done += count
        }
    }

    private func insertPrivateLocked(_ run: PrivatePages, at position: Int) {
        var index = position
        privatePages.insert(run, at: index)
        if index + 1 < privatePages.count, privatePages[index].end == privatePages[index + 1].start,
           privatePages[index].offset + (run.end - run.start) == privatePages[index + 1].offset {
            privatePages[index].end = privatePages[index + 1].end
            privatePages.remove(at: index + 1)
        }
        if index > 0 {
            let previous = privatePages[index - 1]
            if previous.end == privatePages[index].start,
               previous.offset + (previous.end - previous.start) == privatePages[index].offset {
                privatePages[index - 1].end = privatePages[index].end
                privatePages.remove(at: index)
                index -= 1
            }
        }
    }

    /// The MemoryFile runs backing `range`, populating it: (address range,
    /// file offset). `forWriting`: private pages this MM shares with another
    /// are copied first (the Sentry writes only pages that are this MM's alone).
    func backingRunsLocked(_ range: Range<UInt64>, in vma: VMA,
                           forWriting: Bool = false) throws(SyscallError) -> [(Range<UInt64>, UInt64)] {
        if let special = vma.special {
            // Every process's pages: nobody writes them through a mapping.
            guard !forWriting, let memoryFile else { throw .efault }
            return [(range, memoryFile.offset(of: special) + vma.fileOffset + (range.lowerBound - vma.start))]
        }
        if let shared = vma.sharedMemory {
            // A file has no page wholly past its end (a host file's cache may
            // keep one a truncation zeroed): touching one there is SIGBUS, as on Linux.
            let end = try vma.mappedFile?.sizeForMapping()
            // Before any page is taken: a truncation meanwhile then zeroes
            // them rather than freeing pages this MM is about to map.
            shared.noteMapped(by: self)
            var runs: [(Range<UInt64>, UInt64)] = []
            var page = Page.roundDown(range.lowerBound)
            while page < range.upperBound {
                let objectOffset = vma.sharedOffset + (page - vma.start)
                if let end, objectOffset >= end { throw .efault }
                let file = shared.holdsContents ? nil : vma.mappedFile
                let fileOffset = objectOffset
                let offset = try shared.page(objectOffset >> Page.shift) { buffer throws(SyscallError) in
                    if let file { try Self.fill(buffer, from: file, at: fileOffset) }
                }
                let lower = max(page, range.lowerBound), upper = min(page + Page.size, range.upperBound)
                let memoryOffset = offset + (lower - page)
                if let last = runs.last, last.0.upperBound == lower,
                   last.1 + UInt64(last.0.count) == memoryOffset {
                    runs[runs.count - 1].0 = last.0.lowerBound..<upper
                } else {
                    runs.append((lower..<upper, memoryOffset))
                }
                page += Page.size
            }
            return runs
        }
        let pages = Page.roundDown(range.lowerBound)..<(Page.roundUp(range.upperBound) ?? range.upperBound)
        try populatePrivateLocked(pages, in: vma)
        if forWriting { try breakCopyOnWriteLocked(pages, in: vma) }
        var runs: [(Range<UInt64>, UInt64)] = []
        var index = firstPrivateIndexLocked(endingAfter: range.lowerBound)
        while index < privatePages.count, privatePages[index].start < range.upperBound {
            let run = privatePages[index]
            let lower = max(run.start, range.lowerBound), upper = min(run.end, range.upperBound)
            runs.append((lower..<upper, run.offset + (lower - run.start)))
            index += 1
        }
        return runs
    }

    /// Gives this MM its own copy of the pages of `range` (populated, inside
    /// the private `vma`) that other MMs hold too: a new page, the contents
    /// copied, this MM's hold on the shared page dropped, the run pointed at
    /// the copy, and the stub's mapping of it replaced. Pages this MM alone
    /// holds are left as they are. A copy is charged to the memory limit: one
    /// that does not fit is ENOMEM (noted for the OOM kill), the pages copied
    /// before it stay copied.
    func breakCopyOnWriteLocked(_ range: Range<UInt64>, in vma: VMA) throws(SyscallError) {
        guard let memoryFile else { throw .enomem }
        var shared: [(addresses: Range<UInt64>, offset: UInt64)] = []
        var index = firstPrivateIndexLocked(endingAfter: range.lowerBound)
        while index < privatePages.count, privatePages[index].start < range.upperBound {
            let run = privatePages[index]
            let lower = max(run.start, range.lowerBound), upper = min(run.end, range.upperBound)
            let base = run.offset + (lower - run.start)
            for piece in memoryFile.sharedRanges(in: base..<base + (upper - lower)) {
                shared.append((lower + (piece.lowerBound - base)..<lower + (piece.upperBound - base), piece.lowerBound))
            }
            index += 1
        }
        for (addresses, old) in shared {
            let length = UInt64(addresses.count)
            let copy = try memoryFile.allocate(length, cleared: false)
            guard let source = memoryFile.pointer(at: old, count: length),
                  let destination = memoryFile.pointer(at: copy, count: length) else {
                memoryFile.free(offset: copy, length: length)
                throw SyscallError.efault
            }
            // Through the memfd when large: its new pages are not cleared first.
            memoryFile.copy(source, to: UnsafeMutableRawBufferPointer(start: destination, count: Int(length)))
            guard replacePrivateBackingLocked(addresses, with: copy) else {
                memoryFile.free(offset: copy, length: length)
                continue
            }
            for mapped in mappedInStub.intersection(with: addresses) {
                do {
                    try mapStubLocked(mapped, offset: copy + (mapped.lowerBound - addresses.lowerBound),
                                      protection: vma.protection, copyOnWrite: false)
                } catch {
                    unmapStubLocked(mapped)
                }
            }
            // Once the stub maps the copy: the old pages may be freed now
            // (their other owners let go meanwhile) and another MM's at once.
            memoryFile.free(offset: old, length: length)
        }
    }

    /// Points `addresses` at MemoryFile `offset`; false (and nothing
    /// changes) unless one private run holds them all.
    private func replacePrivateBackingLocked(_ addresses: Range<UInt64>, with offset: UInt64) -> Bool {
        let index = firstPrivateIndexLocked(endingAfter: addresses.lowerBound)
        guard index < privatePages.count, privatePages[index].start <= addresses.lowerBound,
              privatePages[index].end >= addresses.upperBound else { return false }
        let run = privatePages[index]
        var pieces: [PrivatePages] = []
        if run.start < addresses.lowerBound {
            pieces.append(PrivatePages(start: run.start, end: addresses.lowerBound, offset: run.offset))
        }
        if run.end > addresses.upperBound {
            pieces.append(PrivatePages(start: addresses.upperBound, end: run.end,
                                       offset: run.offset + (addresses.upperBound - run.start)))
        }
        privatePages.replaceSubrange(index..<index + 1, with: pieces)
        insertPrivateLocked(PrivatePages(start: addresses.lowerBound, end: addresses.upperBound, offset: offset),
                            at: firstPrivateIndexLocked(endingAfter: addresses.lowerBound))
        return true
    }

    /// Maps `range` of the stub to MemoryFile `offset` with `protection`,
    /// less write if other MMs may share the pages (`copyOnWrite`).
    func mapStubLocked(_ range: Range<UInt64>, offset: UInt64, protection: Protection,
                       copyOnWrite: Bool) throws(SyscallError) {
        guard let addressSpace else { throw .efault }
        try addressSpace.map(address: range.lowerBound, length: UInt64(range.count), fileOffset: offset,
                             protection: copyOnWrite ? protection.subtracting(.write) : protection)
        mappedInStub.insert(range)
        if copyOnWrite { copyOnWriteInStub.insert(range) } else { copyOnWriteInStub.remove(range) }
    }

    /// `mapStubLocked` of each piece, in order, in one request to the stub
    /// (`AddressSpaceMapper.apply`); the pieces mapped before one failed
    /// are recorded as mapped. Caller holds `lock`.
    func mapStubLocked(_ pieces: [StubPiece]) throws(SyscallError) {
        guard !pieces.isEmpty else { return }
        guard let addressSpace else { throw .efault }
        let changes = pieces.map { piece in
            StubChange.map(address: piece.range.lowerBound, length: UInt64(piece.range.count), fileOffset: piece.offset,
                           protection: piece.copyOnWrite ? piece.protection.subtracting(.write) : piece.protection)
        }
        let (applied, failure) = addressSpace.apply(changes)
        for piece in pieces.prefix(applied) {
            mappedInStub.insert(piece.range)
            if piece.copyOnWrite { copyOnWriteInStub.insert(piece.range) } else { copyOnWriteInStub.remove(piece.range) }
        }
        if let failure { throw failure }
    }
}

/// A range `mapStubLocked` puts into the stub: MemoryFile pages from
/// `offset`, with the VMA's protection, without write when copy-on-write.
struct StubPiece {
    var range: Range<UInt64>
    var offset: UInt64
    var protection: Protection
    var copyOnWrite: Bool
}

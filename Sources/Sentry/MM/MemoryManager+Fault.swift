/// Application page faults: the stub touched a page it has not mapped, or
/// wrote one it maps without write for copy-on-write.
extension MemoryManager {
    /// What the host said of a SIGSEGV: SEGV_MAPERR (nothing mapped there),
    /// whether it was at the instruction pointer (a fetch), and whether the
    /// same fault was just retried as stale `retryLimit` times in a row (then
    /// it is not another thread's race but a real fault, and is delivered).
    public struct HostFault: Sendable {
        public var unmapped: Bool
        public var instructionFetch: Bool
        public var retriedTooOften: Bool

        /// Stale faults resolve once the racing thread's mapping is in; more
        /// retries than this at one address and instruction mean it never will.
        public static let retryLimit = 64

        public init(unmapped: Bool, instructionFetch: Bool, retriedTooOften: Bool = false) {
            self.unmapped = unmapped
            self.instructionFetch = instructionFetch
            self.retriedTooOften = retriedTooOften
        }

        /// Whether the fault may be another stub thread's mapping seen early.
        var mayBeStale: Bool { !retriedTooOften }
    }

    /// What a fault turned out to be.
    public enum FaultResolution: Equatable, Sendable {
        /// The page is mapped now; the application retries the instruction.
        case mapped
        /// Deliver SIGSEGV with this si_code (SEGV_MAPERR = 1, SEGV_ACCERR = 2).
        case segmentationFault(code: Int32)
        /// Deliver SIGBUS (the memory could not be provided).
        case busError
    }

    /// Maps the window around `address` into the stub, allocating pages as
    /// needed; private pages other MMs share are mapped without write. A
    /// fault on a page already mapped is a write to such a page if its VMA
    /// allows writing (the platform does not say whether a fault was a read
    /// or a write, but a read of it could not have faulted), and otherwise a
    /// protection violation: the stub's mappings carry the VMA's protection.
    /// With the host's view of the fault (`host`), a stale one is retried:
    /// a SEGV_MAPERR on a page mapped now (another thread of the stub
    /// faulted on it at the same moment and had it mapped first), or a
    /// protection fault on a writable page no longer copy-on-write (another
    /// thread's write copied it first) that was no instruction fetch (a jump
    /// into memory without PROT_EXEC, the one other protection fault a
    /// writable page can take).
    public func handleFault(at address: UInt64, host: HostFault? = nil) -> FaultResolution {
        lock.withLock { _ in
            guard let index = vmaIndexLocked(containing: address) else {
                return .segmentationFault(code: LinuxSignal.SEGV_MAPERR)
            }
            let vma = vmas[index]
            if vma.protection.isEmpty {
                return .segmentationFault(code: LinuxSignal.SEGV_ACCERR)
            }
            if mappedInStub.contains(address) {
                if let host, host.unmapped, host.mayBeStale { return .mapped }
                guard vma.protection.contains(.write) else { return .segmentationFault(code: LinuxSignal.SEGV_ACCERR) }
                guard let copyOnWrite = copyOnWriteInStub.range(containing: address) else {
                    if let host, !host.instructionFetch, host.mayBeStale { return .mapped }
                    return .segmentationFault(code: LinuxSignal.SEGV_ACCERR)
                }
                return writeFaultLocked(at: address, in: vma, within: copyOnWrite)
            }
            if vma.isSmallWritablePrivate, memoryFile?.hasRoom(for: vma.length) == true {
                // Failing leaves the pages shared: their write faults copy them.
                try? breakCopyOnWriteLocked(vma.range, in: vma)
            }
            var pieces: [StubPiece] = []
            if let failure = windowPiecesLocked(around: address, in: vma, into: &pieces) { return failure }
            do {
                try mapStubLocked(pieces)
            } catch {
                return .busError
            }
            return .mapped
        }
    }

    /// The pieces (runs of one backing and one sharing) that map the fault
    /// window around `address`, an address of `vma` the stub does not map,
    /// appended to `pieces`; nil, or the resolution when the memory cannot be
    /// provided (then nothing is appended). Caller holds `lock`.
    private func windowPiecesLocked(around address: UInt64, in vma: VMA,
                                    into pieces: inout [StubPiece]) -> FaultResolution? {
        guard addressSpace != nil, let memoryFile else { return .busError }
        let aligned = address & ~(MemoryManager.faultWindow - 1)
        var window = max(vma.start, aligned)..<min(vma.end, aligned + MemoryManager.faultWindow)
        if vma.special != nil {
            window = vma.range
        } else if vma.sharedMemory != nil {
            window = Page.roundDown(address)..<Page.roundDown(address) + Page.size
        } else {
            if vma.mappedFile != nil, !vma.protection.contains(.write) {
                // The file cache's pages cost nothing to share: a whole
                // allocated window of them comes in with this fault.
                let aligned = address & ~(MemoryManager.allocatedFaultWindow - 1)
                try? populatePrivateLocked(max(vma.start, aligned)..<min(vma.end, aligned + MemoryManager.allocatedFaultWindow),
                                           in: vma, cachedOnly: true)
            }
            window = widenedOverAllocatedLocked(window, around: address, in: vma)
        }
        var found: [StubPiece] = []
        do {
            for (range, offset) in try backingRunsLocked(window, in: vma) {
                guard vma.special != nil || memoryFile.ensureLoaded(offset: offset, length: UInt64(range.count)) else {
                    return .busError
                }
                let shared = vma.hasPrivatePages
                    ? memoryFile.sharedRanges(in: offset..<offset + UInt64(range.count)) : []
                var cursor = range.lowerBound
                for piece in shared {
                    let lower = range.lowerBound + (piece.lowerBound - offset)
                    let upper = range.lowerBound + (piece.upperBound - offset)
                    if cursor < lower {
                        found.append(StubPiece(range: cursor..<lower, offset: offset + (cursor - range.lowerBound),
                                               protection: vma.protection, copyOnWrite: false))
                    }
                    found.append(StubPiece(range: lower..<upper, offset: piece.lowerBound,
                                           protection: vma.protection, copyOnWrite: true))
                    cursor = upper
                }
                if cursor < range.upperBound {
                    found.append(StubPiece(range: cursor..<range.upperBound, offset: offset + (cursor - range.lowerBound),
                                           protection: vma.protection, copyOnWrite: false))
                }
            }
        } catch {
            return .busError
        }
        pieces += found
        return nil
    }

    /// Maps the fault windows around `addresses` that the stub does not map
    /// yet, as faults there would, and leaves everything else (a mapped page,
    /// an address with no mapping) to the fault that may come. A stub new to
    /// an MM (a fork's child, an exec) faults first on its instruction and
    /// stack pointers: mapping them beforehand takes one request to the stub
    /// for all instead of a fault stop and a call each.
    public func prefault(_ addresses: [UInt64]) {
        lock.withLock { _ in mapWindowsLocked(around: addresses) }
    }

    /// The fault windows around `addresses` not mapped yet, in one request
    /// to the stub (a stop for several pieces). Caller holds `lock`.
    func mapWindowsLocked(around addresses: [UInt64]) {
        var pieces: [StubPiece] = []
        for address in addresses where !mappedInStub.contains(address)
            && !pieces.contains(where: { $0.range.contains(address) }) {
            guard let index = vmaIndexLocked(containing: address), !vmas[index].protection.isEmpty else { continue }
            _ = windowPiecesLocked(around: address, in: vmas[index], into: &pieces)
        }
        try? mapStubLocked(pieces)
    }

    /// A writable private mapping of at most this many bytes (a program's
    /// or a library's data and bss, a small allocation) is copied whole at
    /// its first fault after a fork (a fault does not say whether it reads
    /// or writes), and at a new stub's start: its pages are
    /// written together (a fork's child resets the locks and state there),
    /// and a fault for each costs more than copying all of them.
    static let smallPrivateCopy: UInt64 = 16 * Page.size

    /// Maps what a stub new to this MM (a fork's child, an exec, a kept
    /// stub emptied by exec) touches first, in as few requests to it as the
    /// pieces allow, instead of a fault stop and a call each: the windows
    /// around `instruction`, `stack` and `threadPointer`, and after an exec
    /// the first window of each of the program's segments (the ELF header,
    /// text, read-only data and data it starts in). Pages
    /// about to be written (the stack's and the thread block's, every page
    /// of a small writable private mapping such as data and bss) that other
    /// MMs share are copied first, so they come in writable in the same
    /// request rather than by a write fault and a call after it.
    public func prefaultNewStub(instruction: UInt64, stack: UInt64, threadPointer: UInt64) {
        lock.withLock { _ in
            var addresses = [instruction, stack, threadPointer]
            addresses += startupAddresses
            startupAddresses = []
            // The registers are the application's: an address no VMA holds is left alone.
            var written: [(Range<UInt64>, VMA)] = []
            for address in [stack, threadPointer] {
                guard let index = vmaIndexLocked(containing: address) else { continue }
                let page = Page.roundDown(address)
                written.append((page..<min(vmas[index].end, page + Page.size), vmas[index]))
            }
            for address in addresses {
                guard let index = vmaIndexLocked(containing: address), vmas[index].isSmallWritablePrivate,
                      memoryFile?.hasRoom(for: vmas[index].length) == true else { continue }
                written.append((vmas[index].range, vmas[index]))
            }
            for (range, vma) in written where vma.hasPrivatePages && vma.protection.contains(.write) {
                // Failing leaves the pages shared: their write faults copy them.
                try? breakCopyOnWriteLocked(range, in: vma)
            }
            mapWindowsLocked(around: addresses)
        }
    }

    /// `prefault`, then the write faults about to come at `addresses`: a
    /// page there that the stub maps copy-on-write in a writable VMA is
    /// copied (or made writable, when no other MM holds it) as its write
    /// fault would. After a fork both sides write their stack at once (and
    /// the child its thread block): each such fault was a stop and an
    /// injected call, this is the call alone. Anything else is left to the fault.
    public func prefaultForWrite(_ addresses: [UInt64]) {
        prefault(addresses)
        for address in addresses where lock.withLock({ _ in copyOnWriteInStub.contains(address) }) {
            _ = handleFault(at: address)
        }
    }

    /// Pages already allocated (those of a process that a fork moved to a
    /// fresh stub, or that a restore brought back) come back in windows of
    /// this size: 512 fault traps for 1 GiB, not 4,096.
    static let allocatedFaultWindow: UInt64 = 512 * Page.size

    /// `window` (a fault window of the private VMA `vma`), widened to the
    /// `allocatedFaultWindow` around `address` when one private run holds
    /// all of it: the widened window stays in that run, so it allocates
    /// nothing the application has not touched.
    private func widenedOverAllocatedLocked(_ window: Range<UInt64>, around address: UInt64,
                                            in vma: VMA) -> Range<UInt64> {
        var first = firstPrivateIndexLocked(endingAfter: window.lowerBound)
        guard first < privatePages.count, privatePages[first].start <= window.lowerBound else { return window }
        // A few runs that follow each other without a gap (a segment's shared
        // file pages and its copied last page) count as one: each is a call.
        let most = 4
        var last = first
        func joins(_ index: Int) -> Bool {
            last - first + 1 < most && index > 0 && index < privatePages.count
                && privatePages[index].start == privatePages[index - 1].end
        }
        while privatePages[last].end < window.upperBound, joins(last + 1) { last += 1 }
        guard privatePages[last].end >= window.upperBound else { return window }
        let aligned = address & ~(MemoryManager.allocatedFaultWindow - 1)
        let lower = max(vma.start, aligned), upper = min(vma.end, aligned + MemoryManager.allocatedFaultWindow)
        while privatePages[first].start > lower, joins(first) { first -= 1 }
        while privatePages[last].end < upper, joins(last + 1) { last += 1 }
        return max(lower, privatePages[first].start)..<min(upper, privatePages[last].end)
    }

    /// A write to a private page the stub maps without write. When this MM
    /// alone holds every page of the copy-on-write mapping `copyOnWrite` in
    /// the VMA (the other side exited or exec'd), all of it becomes writable
    /// in one call. Otherwise this MM copies the faulting page if others
    /// still hold it (the fault window around it, within the VMA and
    /// `copyOnWrite`, when the fault continues the last copy in address
    /// order and the window's copies fit the memory limit), and the stub may
    /// write the window's pages it alone holds.
    private func writeFaultLocked(at address: UInt64, in vma: VMA,
                                  within copyOnWrite: Range<UInt64>) -> FaultResolution {
        guard let memoryFile else { return .busError }
        let whole = max(vma.start, copyOnWrite.lowerBound)..<min(vma.end, copyOnWrite.upperBound)
        if !sharesAnyPageLocked(in: whole, memoryFile) {
            do {
                try addressSpace?.protect(address: whole.lowerBound, length: UInt64(whole.count), protection: vma.protection)
            } catch {
                return .busError
            }
            copyOnWriteInStub.remove(whole)
            return .mapped
        }
        // After a fork both sides write a few scattered pages (the stack, some
        // data), and copying a window for each cost more than the rest of the
        // fork; a writer going through memory in order still copies a window
        // per fault.
        let page = Page.roundDown(address)
        var window = page..<page + Page.size
        if vma.isSmallWritablePrivate {
            window = whole
        } else if page == sequentialCopyAddress {
            let aligned = address & ~(MemoryManager.faultWindow - 1)
            window = max(vma.start, aligned, copyOnWrite.lowerBound)
                ..< min(vma.end, aligned + MemoryManager.faultWindow, copyOnWrite.upperBound)
        }
        do {
            try breakCopyOnWriteLocked(window, in: vma)
        } catch {
            window = page..<page + Page.size
            do { try breakCopyOnWriteLocked(window, in: vma) } catch { return .busError }
        }
        sequentialCopyAddress = window.upperBound
        // What is still mapped copy-on-write in the window and held by this
        // MM alone (a copy another MM made, or its exit, left it here) just
        // becomes writable.
        var index = firstPrivateIndexLocked(endingAfter: window.lowerBound)
        while index < privatePages.count, privatePages[index].start < window.upperBound {
            let run = privatePages[index]
            let lower = max(run.start, window.lowerBound), upper = min(run.end, window.upperBound)
            let base = run.offset + (lower - run.start)
            var cursor = lower
            var exclusive: [Range<UInt64>] = []
            for shared in memoryFile.sharedRanges(in: base..<base + (upper - lower)) {
                let sharedStart = lower + (shared.lowerBound - base)
                if cursor < sharedStart { exclusive.append(cursor..<sharedStart) }
                cursor = lower + (shared.upperBound - base)
            }
            if cursor < upper { exclusive.append(cursor..<upper) }
            for piece in exclusive {
                for mapped in copyOnWriteInStub.intersection(with: piece) {
                    do {
                        try addressSpace?.protect(address: mapped.lowerBound, length: UInt64(mapped.count),
                                                  protection: vma.protection)
                    } catch {
                        return .busError
                    }
                    copyOnWriteInStub.remove(mapped)
                }
            }
            index += 1
        }
        return .mapped
    }

    /// Whether another MM holds any private page of `range`.
    private func sharesAnyPageLocked(in range: Range<UInt64>, _ memoryFile: MemoryFile) -> Bool {
        var index = firstPrivateIndexLocked(endingAfter: range.lowerBound)
        while index < privatePages.count, privatePages[index].start < range.upperBound {
            let run = privatePages[index]
            let lower = max(run.start, range.lowerBound), upper = min(run.end, range.upperBound)
            let base = run.offset + (lower - run.start)
            if !memoryFile.sharedRanges(in: base..<base + (upper - lower)).isEmpty { return true }
            index += 1
        }
        return false
    }
}

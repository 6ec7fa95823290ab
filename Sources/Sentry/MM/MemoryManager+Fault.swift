/// Application page faults: the stub touched a page it has not mapped.
extension MemoryManager {
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
    /// needed. A fault on a page already mapped is a protection violation: the
    /// stub's mappings always carry the VMA's full protection.
    public func handleFault(at address: UInt64) -> FaultResolution {
        lock.withLock { _ in
            guard let index = vmaIndexLocked(containing: address) else {
                return .segmentationFault(code: LinuxSignal.SEGV_MAPERR)
            }
            let vma = vmas[index]
            if vma.protection.isEmpty || mappedInStub.contains(address) {
                return .segmentationFault(code: LinuxSignal.SEGV_ACCERR)
            }
            guard let addressSpace else { return .busError }
            let aligned = address & ~(MemoryManager.faultWindow - 1)
            var window = max(vma.start, aligned)..<min(vma.end, aligned + MemoryManager.faultWindow)
            if vma.sharedMemory != nil { window = Page.roundDown(address)..<Page.roundDown(address) + Page.size }
            do {
                for (range, offset) in try backingRunsLocked(window, in: vma) {
                    guard memoryFile?.ensureLoaded(offset: offset, length: UInt64(range.count)) ?? true else {
                        return .busError
                    }
                    try addressSpace.map(address: range.lowerBound, length: UInt64(range.count),
                                         fileOffset: offset, protection: vma.protection)
                    mappedInStub.insert(range)
                }
            } catch {
                return .busError
            }
            return .mapped
        }
    }
}

/// fork(2)'s address space: the child's MM is a copy-on-write copy of the parent's.
extension MemoryManager {
    /// Makes a fresh, empty stub for this MM and takes the one it had, which
    /// its caller ends; called under the MM's lock, so it must not call back
    /// into the MM.
    public typealias StubReplacement = (_ previous: any AddressSpaceMapper) throws(SyscallError) -> any AddressSpaceMapper

    /// From this many bytes of writable private pages mapped in the stub, a
    /// fork moves this MM to a fresh stub (`StubReplacement`) rather than
    /// taking write from them: the host's mprotect costs per page table
    /// entry (about 20 ms for 1 GiB here, as much as the host's own fork),
    /// a fresh stub costs the same at any size, and the pages come back by
    /// faults, as the host's own fork has them come back.
    static let freshStubThreshold: UInt64 = 64 << 20

    /// A new MM with this one's mappings and layout, for a forked child (not
    /// yet running: it has no address space). Shared mappings share their
    /// pages with this MM; private pages are the child's own, with this MM's
    /// contents at the time of the call. Called on the forking task's thread.
    ///
    /// Nothing is copied and nothing is charged to the memory limit: both MMs
    /// hold the same private pages in the MemoryFile (one more owner per run
    /// of pages, not per page), and this MM's stub stops writing them, so the
    /// first write on either side faults and copies (`breakCopyOnWriteLocked`).
    /// The stub stops writing them either by losing write on each mapped run,
    /// or, past `freshStubThreshold` and when `replaceStub` is given and this
    /// MM has one user, by being replaced with an empty one (nothing mapped:
    /// every page faults in again, shared ones without write).
    public func fork(replaceStub: StubReplacement? = nil) throws(SyscallError) -> MemoryManager {
        guard let memoryFile else { throw .enomem }
        let child = MemoryManager(memoryFile: memoryFile)
        try lock.withLock { _ throws(SyscallError) in
            try stopStubWritingPrivatePagesLocked(replaceStub: replaceStub)
            try memoryFile.retain(privatePages.map(\.backing))
            var anonymousShared: [SharedMemory] = []
            for vma in vmas {
                if let memory = vma.sharedMemory, vma.isAnonymous, !anonymousShared.contains(where: { $0 === memory }) {
                    anonymousShared.append(memory)
                }
            }
            for memory in anonymousShared { memory.retainMapping() }
            child.vmas = vmas
            child.privatePages = privatePages
            child.mmapBase = mmapBase
            child.brkStart = brkStart
            child.brk = brk
            child.stackTop = stackTop
            child.argvRange = argvRange
            child.envRange = envRange
            child.auxv = auxv
            child.executablePath = executablePath
        }
        return child
    }

    /// After a fork moved this MM to a fresh stub (nothing mapped): what the
    /// parent touches on its way back (its code, the vDSO and its data page,
    /// which its next clock read runs in, and its stack, which it writes)
    /// comes in with one request to the stub instead of a fault stop and a
    /// call each.
    public func prefaultFreshStubAfterFork(instruction: UInt64, stack: UInt64) {
        let specials = lock.withLock { _ in vmas.filter { $0.special != nil }.map(\.start) }
        prefault([instruction] + specials)
        prefaultForWrite([stack])
    }

    /// The stub keeps the private pages it maps but may no longer write
    /// them: each mapped piece of a writable private VMA loses write (one
    /// injected mprotect per run of pieces with one protection), and all of
    /// them are noted copy-on-write; or the stub is replaced (see `fork`).
    /// A failure leaves the fork undone; pieces noted but still writable are
    /// this MM's alone, so that is harmless.
    private func stopStubWritingPrivatePagesLocked(replaceStub: StubReplacement?) throws(SyscallError) {
        guard let addressSpace, !mappedInStub.isEmpty else { return }
        var pending: [(range: Range<UInt64>, protection: Protection)] = []
        var writable: UInt64 = 0
        for vma in vmas where vma.hasPrivatePages && vma.protection.contains(.write) {
            for mapped in mappedInStub.intersection(with: vma.range) {
                writable += UInt64(mapped.count)
                let protection = vma.protection.subtracting(.write)
                if let last = pending.last, last.range.upperBound == mapped.lowerBound, last.protection == protection {
                    pending[pending.count - 1].range = last.range.lowerBound..<mapped.upperBound
                } else {
                    pending.append((mapped, protection))
                }
            }
        }
        if writable >= MemoryManager.freshStubThreshold, addressSpaceUsers == 1, let replaceStub,
           let fresh = try? replaceStub(addressSpace) {
            self.addressSpace = fresh
            mappedInStub = RangeSet()
            copyOnWriteInStub = RangeSet()
            return
        }
        for vma in vmas where vma.hasPrivatePages {
            for mapped in mappedInStub.intersection(with: vma.range) { copyOnWriteInStub.insert(mapped) }
        }
        // One request: the stub takes several in one stop.
        let changes = pending.map { StubChange.protect(address: $0.range.lowerBound, length: UInt64($0.range.count),
                                                       protection: $0.protection) }
        if let failure = addressSpace.apply(changes).failure { throw failure }
    }
}

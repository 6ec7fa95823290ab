/// fork(2)'s address space: the child's MM is a copy-on-write copy of the parent's.
extension MemoryManager {
    /// A new MM with this one's mappings and layout, for a forked child (not
    /// yet running: it has no address space). Shared mappings share their
    /// pages with this MM; private pages are the child's own, with this MM's
    /// contents at the time of the call. Called on the forking task's thread.
    ///
    /// Nothing is copied and nothing is charged to the memory limit: both MMs
    /// hold the same private pages in the MemoryFile (one more owner per run
    /// of pages, not per page) and this MM's stub stops writing them, so the
    /// first write on either side faults and copies (`breakCopyOnWriteLocked`).
    public func fork() throws(SyscallError) -> MemoryManager {
        guard let memoryFile else { throw .enomem }
        let child = MemoryManager(memoryFile: memoryFile)
        try lock.withLock { _ throws(SyscallError) in
            try protectPrivatePagesInStubLocked()
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

    /// The stub keeps the private pages it maps but may no longer write
    /// them: each mapped piece of a writable private VMA loses write (one
    /// injected mprotect per run of pieces with one protection), and all of
    /// them are noted copy-on-write. A failure leaves the fork undone; pieces
    /// noted but still writable are this MM's alone, so that is harmless.
    private func protectPrivatePagesInStubLocked() throws(SyscallError) {
        guard let addressSpace, !mappedInStub.isEmpty else { return }
        var pending: [(range: Range<UInt64>, protection: Protection)] = []
        for vma in vmas where vma.sharedMemory == nil {
            for mapped in mappedInStub.intersection(with: vma.range) {
                copyOnWriteInStub.insert(mapped)
                guard vma.protection.contains(.write) else { continue }
                let protection = vma.protection.subtracting(.write)
                if let last = pending.last, last.range.upperBound == mapped.lowerBound, last.protection == protection {
                    pending[pending.count - 1].range = last.range.lowerBound..<mapped.upperBound
                } else {
                    pending.append((mapped, protection))
                }
            }
        }
        for (range, protection) in pending {
            try addressSpace.protect(address: range.lowerBound, length: UInt64(range.count), protection: protection)
        }
    }
}

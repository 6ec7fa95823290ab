/// The vDSO in an address space (VDSO.swift): exec maps it into every new
/// MM, a fork's copy of the VMAs carries it, an image names it.
extension MemoryManager {
    /// Maps `[vvar]` and `[vdso]` (the vDSO just above its data page) just
    /// below `ceiling`, where Linux's map_vdso puts them without
    /// randomisation (below the interpreter, or the stack gap of a static
    /// program); returns the vDSO's address, AT_SYSINFO_EHDR.
    func mapVDSO(below ceiling: UInt64) throws(SyscallError) -> UInt64 {
        try lock.withLock { _ throws(SyscallError) -> UInt64 in
            guard memoryFile != nil, ceiling <= MemoryManager.maxAddress,
                  ceiling >= MemoryManager.minAddress + VDSO.size else { throw SyscallError.enomem }
            let start = Page.roundDown(ceiling) - VDSO.size
            guard isFreeLocked(start..<start + VDSO.size), vmas.count + 2 <= MemoryManager.maxMapCount else {
                throw SyscallError.enomem
            }
            for kind in SpecialMapping.allCases {
                var vma = VMA(start: start + kind.pages.lowerBound, end: start + kind.pages.upperBound,
                              protection: kind.protection, maxProtection: kind.protection, shared: false,
                              name: kind.name)
                vma.special = kind
                insertVMALocked(vma)
            }
            return start + SpecialMapping.vdso.pages.lowerBound
        }
    }
}

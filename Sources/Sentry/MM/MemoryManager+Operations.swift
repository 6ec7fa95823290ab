/// The operations behind mmap, munmap, mprotect, mremap, madvise, msync and
/// brk. Arguments arrive validated for alignment by the syscall layer; these
/// check what needs the VMAs, with Linux's errnos.
extension MemoryManager {
    /// How a new mapping is backed.
    public enum MappingBacking {
        case anonymous
        case file(any MappableFile, offset: UInt64)
    }

    /// What `mmap` asks for, after the syscall layer decoded its flags.
    public struct MappingRequest {
        public var address: UInt64
        public var length: UInt64
        public var protection: Protection
        public var maxProtection: Protection = .all
        public var shared: Bool
        /// MAP_FIXED: replace whatever is there.
        public var fixed: Bool = false
        /// MAP_FIXED_NOREPLACE: EEXIST if anything is there.
        public var fixedNoReplace: Bool = false
        public var growsDown: Bool = false
        public var backing: MappingBacking = .anonymous
        public var name: String = ""

        public init(address: UInt64, length: UInt64, protection: Protection, shared: Bool) {
            self.address = address
            self.length = length
            self.protection = protection
            self.shared = shared
        }
    }

    /// Creates a mapping; returns its address. `length` must be a page multiple.
    public func map(_ request: MappingRequest) throws(SyscallError) -> UInt64 {
        let length = request.length
        guard length > 0, Page.isAligned(length), length <= MemoryManager.maxAddress else { throw .enomem }
        let sharedMemory: SharedMemory?
        switch (request.shared, request.backing) {
        case (true, .anonymous):
            guard let memoryFile else { throw .enomem }
            sharedMemory = SharedMemory(memoryFile: memoryFile)
        case (true, .file(let file, _)):
            guard let memoryFile else { throw .enomem }
            sharedMemory = file.sharedPages(memoryFile: memoryFile)
        default:
            sharedMemory = nil
        }
        // Named before the MM's lock is taken: a file's name takes the VFS lock,
        // and procfs walks take the MM's lock under the VFS lock.
        var name = request.name
        if name.isEmpty, case .file(let file, _) = request.backing { name = file.mappingName }
        return try lock.withLock { _ throws(SyscallError) -> UInt64 in
            let address: UInt64
            let hint = Page.roundDown(request.address)
            let hintFits = hint >= MemoryManager.minAddress && hint <= MemoryManager.maxAddress - length
            if request.fixed || request.fixedNoReplace {
                guard hintFits, hint == request.address else {
                    throw hint == request.address && request.address != 0 ? SyscallError.enomem : SyscallError.einval
                }
                if request.fixedNoReplace && !isFreeLocked(hint..<hint + length) { throw SyscallError.eexist }
                address = hint
            } else if hintFits, isFreeLocked(hint..<hint + length) {
                address = hint
            } else {
                guard let gap = findGapLocked(length: length) else { throw SyscallError.enomem }
                address = gap
            }
            guard vmas.count < MemoryManager.maxMapCount else { throw SyscallError.enomem }
            removeRangeLocked(address..<address + length)
            var vma = VMA(start: address, end: address + length, protection: request.protection,
                          maxProtection: request.maxProtection, shared: request.shared,
                          sharedMemory: sharedMemory, name: name)
            vma.growsDown = request.growsDown
            if case .file(let file, let offset) = request.backing {
                vma.file = MappedFileReference(file: file)
                vma.fileOffset = offset
                vma.sharedOffset = offset
            }
            insertVMALocked(vma)
            return address
        }
    }

    /// Removes mappings in `address..<address+length` (page multiples); holes are fine.
    public func unmap(address: UInt64, length: UInt64) throws(SyscallError) {
        let range = address..<address + length
        let writeBack = lock.withLock { _ in sharedFileVMAsLocked(in: range) }
        writeBackSharedFiles(writeBack)
        lock.withLock { _ in removeRangeLocked(range) }
    }

    /// How many VMAs map `file` (a SysV segment's shm_nattch counts them, as
    /// Linux's shm_open and shm_close do).
    public func mappingCount(of file: AnyObject) -> Int {
        lock.withLock { _ in vmas.count { $0.file.map { $0.file as AnyObject } === file } }
    }

    /// mincore: for each page of `range`, whether memory backs it now (a
    /// private page, or a page of the shared object); ENOMEM if any page
    /// is unmapped.
    public func residency(of range: Range<UInt64>) throws(SyscallError) -> [Bool] {
        try lock.withLock { _ throws(SyscallError) -> [Bool] in
            guard isFullyMappedLocked(range) else { throw SyscallError.enomem }
            var resident = [Bool](repeating: false, count: Int((range.upperBound - range.lowerBound) / Page.size))
            var index = firstPrivateIndexLocked(endingAfter: range.lowerBound)
            while index < privatePages.count, privatePages[index].start < range.upperBound {
                let run = privatePages[index]
                for page in stride(from: max(run.start, range.lowerBound), to: min(run.end, range.upperBound),
                                   by: Int(Page.size)) {
                    resident[Int((page - range.lowerBound) / Page.size)] = true
                }
                index += 1
            }
            var vmaIndex = firstVMAIndexLocked(endingAfter: range.lowerBound)
            while vmaIndex < vmas.count, vmas[vmaIndex].start < range.upperBound {
                let vma = vmas[vmaIndex]
                if let shared = vma.sharedMemory {
                    for page in stride(from: max(vma.start, range.lowerBound), to: min(vma.end, range.upperBound),
                                       by: Int(Page.size)) {
                        let objectPage = (vma.sharedOffset + (page - vma.start)) / Page.size
                        if shared.existingPage(objectPage) != nil {
                            resident[Int((page - range.lowerBound) / Page.size)] = true
                        }
                    }
                }
                vmaIndex += 1
            }
            return resident
        }
    }

    /// The file the VMA starting at `address` maps, if one starts there.
    public func fileMapped(at address: UInt64) -> AnyObject? {
        lock.withLock { _ in
            guard let index = vmaIndexLocked(containing: address), vmas[index].start == address else { return nil }
            return vmas[index].file.map { $0.file as AnyObject }
        }
    }

    /// shmdt: takes out the VMAs of `file` that lie within `length` bytes
    /// from `address` at their own distance from it in the file (the
    /// attachment made there, however mprotect split it). False when no VMA
    /// of `file` starts at `address` at the file's start.
    public func unmapAttachment(of file: AnyObject, at address: UInt64, length: UInt64) throws(SyscallError) -> Bool {
        let limit = address.addingReportingOverflow(length)
        let end = limit.overflow ? UInt64.max : limit.partialValue
        let ranges = lock.withLock { _ -> [Range<UInt64>] in
            let attached = vmas.filter { vma in
                vma.file.map { $0.file as AnyObject } === file && vma.start >= address && vma.end <= end
                    && vma.fileOffset == vma.start - address
            }
            guard attached.contains(where: { $0.start == address }) else { return [] }
            return attached.map { $0.start..<$0.end }
        }
        for range in ranges { try unmap(address: range.lowerBound, length: range.upperBound - range.lowerBound) }
        return !ranges.isEmpty
    }

    /// mprotect: every page must be mapped (ENOMEM), and a protection beyond
    /// what the mapping allows is EACCES.
    public func protect(address: UInt64, length: UInt64, protection: Protection) throws(SyscallError) {
        let range = address..<address + length
        try lock.withLock { _ throws(SyscallError) in
            guard isFullyMappedLocked(range) else { throw SyscallError.enomem }
            let first = firstVMAIndexLocked(endingAfter: address)
            var index = first
            while index < vmas.count, vmas[index].start < range.upperBound {
                guard vmas[index].maxProtection.isSuperset(of: protection) else { throw SyscallError.eacces }
                index += 1
            }
            let indices = splitLocked(at: range)
            for index in indices { vmas[index].protection = protection }
            coalesceLocked(around: indices)
            for mapped in mappedInStub.intersection(with: range) {
                if protection.isEmpty {
                    unmapStubLocked(mapped)
                    continue
                }
                // Pages mapped copy-on-write stay without write until a write fault copies them.
                var cursor = mapped.lowerBound
                for copyOnWrite in copyOnWriteInStub.intersection(with: mapped) {
                    if cursor < copyOnWrite.lowerBound {
                        try? addressSpace?.protect(address: cursor, length: copyOnWrite.lowerBound - cursor,
                                                   protection: protection)
                    }
                    try? addressSpace?.protect(address: copyOnWrite.lowerBound, length: UInt64(copyOnWrite.count),
                                               protection: protection.subtracting(.write))
                    cursor = copyOnWrite.upperBound
                }
                if cursor < mapped.upperBound {
                    try? addressSpace?.protect(address: cursor, length: mapped.upperBound - cursor, protection: protection)
                }
            }
        }
    }

    /// brk: grows or shrinks the heap; returns the new break, or the old one
    /// when the request cannot be met (Linux's convention; no errno): the
    /// heap may not exceed `dataLimit` (RLIMIT_DATA) nor the mappings
    /// `addressSpaceLimit` (RLIMIT_AS).
    public func setBreak(_ requested: UInt64, dataLimit: UInt64 = .max, addressSpaceLimit: UInt64 = .max) -> UInt64 {
        lock.withLock { _ in
            guard requested >= brkStart, requested <= MemoryManager.maxAddress,
                  let newEnd = Page.roundUp(requested), let oldEnd = Page.roundUp(brk) else { return brk }
            if newEnd > oldEnd {
                guard isFreeLocked(oldEnd..<newEnd), vmas.count < MemoryManager.maxMapCount,
                      requested - brkStart <= dataLimit,
                      addressSpaceLimit == .max || mappedBytesLocked + (newEnd - oldEnd) <= addressSpaceLimit
                else { return brk }
                insertVMALocked(VMA(start: oldEnd, end: newEnd, protection: [.read, .write], shared: false,
                                    name: "[heap]"))
                // malloc writes the new memory at once, from its start: its
                // window now is one call, its fault would be a stop and a call.
                // Only with room for it: memory taken ahead of need must not
                // bring the OOM kill a brk alone never would.
                if memoryFile?.hasRoom(for: min(newEnd - oldEnd, MemoryManager.faultWindow)) == true {
                    mapWindowsLocked(around: [oldEnd])
                }
            } else if newEnd < oldEnd {
                removeRangeLocked(newEnd..<oldEnd)
            }
            brk = requested
            return brk
        }
    }

    /// mremap flags.
    public struct RemapFlags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let mayMove = RemapFlags(rawValue: 1)
        public static let fixed = RemapFlags(rawValue: 2)
        public static let dontUnmap = RemapFlags(rawValue: 4)
    }

    /// mremap: resizes in place when it can, else moves (with MREMAP_MAYMOVE).
    /// Moving relabels pages rather than copying them.
    public func remap(oldAddress: UInt64, oldLength: UInt64, newLength: UInt64,
                      flags: RemapFlags, newAddress: UInt64) throws(SyscallError) -> UInt64 {
        try lock.withLock { _ throws(SyscallError) -> UInt64 in
            guard let index = vmaIndexLocked(containing: oldAddress) else { throw SyscallError.efault }
            let vma = vmas[index]
            let (oldEnd, overflow) = oldAddress.addingReportingOverflow(oldLength)
            guard !overflow, oldEnd <= vma.end else { throw SyscallError.efault }
            if flags.contains(.dontUnmap) && (vma.shared || !vma.isAnonymous || oldLength != newLength) {
                throw SyscallError.einval
            }
            // special_mapping_mremap: the vDSO moves whole, neither split nor resized.
            if vma.special != nil && (oldAddress != vma.start || oldLength != vma.length || newLength != oldLength
                                      || flags.contains(.dontUnmap)) {
                throw SyscallError.einval
            }
            // vma_to_resize: the offsets of the new range must not wrap (a fault would compute past 2^64).
            func wraps(_ offset: UInt64) -> Bool {
                let (first, overflow) = offset.addingReportingOverflow(oldAddress - vma.start)
                return overflow || first.addingReportingOverflow(newLength).overflow
            }
            if wraps(vma.fileOffset) || wraps(vma.sharedOffset) { throw SyscallError.einval }
            if flags.contains(.fixed) {
                let (newEnd, overflowNew) = newAddress.addingReportingOverflow(newLength)
                guard !overflowNew, newEnd <= MemoryManager.maxAddress, newAddress >= MemoryManager.minAddress
                else { throw SyscallError.einval }
                if (newAddress..<newEnd).overlaps(oldAddress..<oldEnd) { throw SyscallError.einval }
                removeRangeLocked(newAddress..<newEnd)
                guard let index = vmaIndexLocked(containing: oldAddress) else { throw SyscallError.efault }
                return moveLocked(vmaIndex: index, from: oldAddress, oldLength: oldLength, to: newAddress,
                                  newLength: newLength, keepOld: flags.contains(.dontUnmap))
            }
            if newLength <= oldLength && !flags.contains(.dontUnmap) {
                removeRangeLocked(oldAddress + newLength..<oldEnd)
                return oldAddress
            }
            let growth = newLength - oldLength
            if oldEnd == vma.end, !flags.contains(.dontUnmap), oldEnd <= MemoryManager.maxAddress - growth,
               isFreeLocked(oldEnd..<oldEnd + growth) {
                var extension_ = vma.clipped(to: vma.start..<vma.end)
                extension_.start = oldEnd
                extension_.end = oldEnd + growth
                extension_.fileOffset = vma.fileOffset + (oldEnd - vma.start)
                extension_.sharedOffset = vma.sharedOffset + (oldEnd - vma.start)
                insertVMALocked(extension_)
                return oldAddress
            }
            guard flags.contains(.mayMove) else { throw SyscallError.enomem }
            guard let target = findGapLocked(length: newLength) else { throw SyscallError.enomem }
            return moveLocked(vmaIndex: index, from: oldAddress, oldLength: oldLength, to: target,
                              newLength: newLength, keepOld: flags.contains(.dontUnmap))
        }
    }

    /// Moves `from..<from+oldLength` (inside one VMA) to a free `to`, growing
    /// or shrinking to `newLength`.
    private func moveLocked(vmaIndex: Int, from: UInt64, oldLength: UInt64, to: UInt64,
                            newLength: UInt64, keepOld: Bool) -> UInt64 {
        let vma = vmas[vmaIndex]
        let kept = min(oldLength, newLength)
        var moved = vma.clipped(to: from..<from + oldLength)
        moved.start = to
        moved.end = to + newLength
        // Take the private pages of the part that moves.
        var carried: [PrivatePages] = []
        var index = firstPrivateIndexLocked(endingAfter: from)
        while index < privatePages.count, privatePages[index].start < from + kept {
            let run = privatePages[index]
            let lower = max(run.start, from), upper = min(run.end, from + kept)
            carried.append(PrivatePages(start: lower - from + to, end: upper - from + to,
                                        offset: run.offset + (lower - run.start)))
            index += 1
        }
        if !keepOld {
            // Detach carried pages so removing the old range does not free them.
            detachPrivatePagesLocked(in: from..<from + kept)
            removeRangeLocked(from..<from + oldLength)
        } else {
            detachPrivatePagesLocked(in: from..<from + kept)
            unmapStubLocked(from..<from + oldLength)
        }
        insertVMALocked(moved)
        for run in carried {
            let position = firstPrivateIndexLocked(endingAfter: run.start)
            privatePages.insert(run, at: position)
        }
        return to
    }

    /// Forgets private pages in `range` without freeing them (they moved).
    private func detachPrivatePagesLocked(in range: Range<UInt64>) {
        var index = firstPrivateIndexLocked(endingAfter: range.lowerBound)
        let first = index
        var replacement: [PrivatePages] = []
        while index < privatePages.count, privatePages[index].start < range.upperBound {
            let run = privatePages[index]
            if run.start < range.lowerBound {
                replacement.append(PrivatePages(start: run.start, end: range.lowerBound, offset: run.offset))
            }
            if run.end > range.upperBound {
                replacement.append(PrivatePages(start: range.upperBound, end: run.end,
                                                offset: run.offset + (range.upperBound - run.start)))
            }
            index += 1
        }
        privatePages.replaceSubrange(first..<index, with: replacement)
    }

    /// MADV_DONTNEED: private pages in `range` are dropped (anonymous memory
    /// reads back as zero, file mappings re-read the file). ENOMEM if part of
    /// the range is unmapped, after acting on the rest, as Linux does.
    public func dropPages(address: UInt64, length: UInt64) throws(SyscallError) {
        let range = address..<address + length
        try lock.withLock { _ throws(SyscallError) in
            var index = firstVMAIndexLocked(endingAfter: address)
            while index < vmas.count, vmas[index].start < range.upperBound {
                let vma = vmas[index]
                if !vma.shared {
                    let lower = max(vma.start, address), upper = min(vma.end, range.upperBound)
                    unmapStubLocked(lower..<upper)
                    freePrivatePagesLocked(in: lower..<upper)
                }
                index += 1
            }
            guard isFullyMappedLocked(range) else { throw SyscallError.enomem }
        }
    }

    /// Whether every page of the range is mapped (madvise and msync's ENOMEM).
    public func isFullyMapped(address: UInt64, length: UInt64) -> Bool {
        lock.withLock { _ in isFullyMappedLocked(address..<address + length) }
    }

    /// msync: writes shared file mappings in the range back to their files.
    public func sync(address: UInt64, length: UInt64) throws(SyscallError) {
        let range = address..<address + length
        let targets = try lock.withLock { _ throws(SyscallError) in
            guard isFullyMappedLocked(range) else { throw SyscallError.enomem }
            return sharedFileVMAsLocked(in: range)
        }
        writeBackSharedFiles(targets)
    }

    /// Whether a shared mapping of `contents` may be written, now or after an
    /// mprotect (is_shared_maywrite: VM_SHARED with VM_MAYWRITE).
    func mapsSharedWritable(_ contents: SharedMemory) -> Bool {
        lock.withLock { _ in
            vmas.contains { $0.shared && $0.maxProtection.contains(.write) && $0.sharedMemory === contents }
        }
    }

    /// Writes back every shared file mapping (at exit).
    public func syncAll() {
        let targets = lock.withLock { _ in sharedFileVMAsLocked(in: 0..<MemoryManager.maxAddress) }
        writeBackSharedFiles(targets)
    }

    func sharedFileVMAsLocked(in range: Range<UInt64>) -> [VMA] {
        var result: [VMA] = []
        var index = firstVMAIndexLocked(endingAfter: range.lowerBound)
        while index < vmas.count, vmas[index].start < range.upperBound {
            let vma = vmas[index]
            if vma.shared, vma.mappedFile != nil, vma.maxProtection.contains(.write) {
                result.append(vma.clipped(to: range))
            }
            index += 1
        }
        return result
    }

    /// Copies the present pages of shared file mappings to their files, never past the end of file.
    func writeBackSharedFiles(_ targets: [VMA]) {
        guard let memoryFile else { return }
        for vma in targets {
            guard let file = vma.mappedFile, let shared = vma.sharedMemory, !shared.holdsContents,
                  let size = try? file.sizeForMapping() else { continue }
            let firstPage = vma.sharedOffset >> Page.shift
            let pageCount = vma.length >> Page.shift
            for (page, offset) in shared.presentPages(in: firstPage..<firstPage + pageCount) {
                let fileOffset = page << Page.shift
                guard fileOffset < size, let pointer = memoryFile.pointer(at: offset, count: Page.size) else { continue }
                let count = Int(min(Page.size, size - fileOffset))
                try? file.writeFromMapping(UnsafeRawBufferPointer(start: pointer, count: count), at: fileOffset)
            }
        }
    }
}

/// brk, mmap, munmap, mprotect, mremap, madvise, msync, mlock: argument checks
/// in the order Linux's mm/mmap.c makes them, then the MemoryManager.
extension SyscallTable {
    mutating func registerMemory() {
        register(12, Memory.brk)
        register(9, Memory.mmap)
        register(11, Memory.munmap)
        register(10, Memory.mprotect)
        register(25, Memory.mremap)
        register(28, Memory.madvise)
        register(27, Memory.mincore)
        register(26, Memory.msync)
        register(149, Memory.mlock)        // mlock
        register(150, Memory.mlock)        // munlock
        register(325, Memory.mlock)        // mlock2
        register(151) { _, _ throws(SyscallError) in 0 }   // mlockall
        register(152) { _, _ throws(SyscallError) in 0 }   // munlockall
        register(319, MemfdSyscalls.memfdCreate)
    }
}

enum Memory {
    static let mapShared: Int32 = 0x01
    static let mapPrivate: Int32 = 0x02
    static let mapSharedValidate: Int32 = 0x03
    static let mapTypeMask: Int32 = 0x0f
    static let mapFixed: Int32 = 0x10
    static let mapAnonymous: Int32 = 0x20
    static let mapGrowsDown: Int32 = 0x100
    static let mapFixedNoReplace: Int32 = 0x100000
    static let protRead: UInt64 = 0x1
    static let protWrite: UInt64 = 0x2
    static let protExec: UInt64 = 0x4
    static let protSem: UInt64 = 0x8
    static let protGrowsDown: UInt64 = 0x0100_0000
    static let protGrowsUp: UInt64 = 0x0200_0000
    /// Every flag MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK plus SYNC).
    static let mapKnownFlags: Int32 = 0x0f | 0x10 | 0x20 | 0x100 | 0x800 | 0x1000 | 0x2000 | 0x4000
        | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x100000 | (0x3f << 26)

    static func brk(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let limits = task.threadGroup?.limits ?? Limits()
        return Int64(bitPattern: try task.memory().setBreak(args.pointer(0), dataLimit: limits[.data].soft,
                                                            addressSpaceLimit: limits[.addressSpace].soft))
    }

    static func mmap(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), length = args.uint64(1)
        // prot is an unsigned long; mmap ignores the bits it does not know (mprotect does not).
        let protection = args.uint64(2), flags = args.int(3), fd = args.int(4), offset = args.uint64(5)
        guard Page.isAligned(offset) else { throw .einval }
        let anonymous = flags & mapAnonymous != 0
        var file: (file: any MappableFile, readable: Bool, writable: Bool)?
        if !anonymous { file = try task.mappableFile(fd: fd) }
        guard length > 0 else { throw .einval }
        guard let aligned = Page.roundUp(length), aligned <= MemoryManager.maxAddress else { throw .enomem }
        // file_mmap_ok: a file's bytes end at INT64_MAX.
        if !anonymous, offset > UInt64(Int64.max) || aligned > UInt64(Int64.max) - offset { throw .eoverflow }
        let type = flags & mapTypeMask
        guard type == mapShared || type == mapPrivate || type == mapSharedValidate else { throw .einval }
        if type == mapSharedValidate && flags & ~mapKnownFlags != 0 { throw .eopnotsupp }
        let shared = type != mapPrivate
        let fixed = flags & mapFixed != 0
        if fixed && !Page.isAligned(address) { throw .einval }

        var request = MemoryManager.MappingRequest(address: address, length: aligned,
                                                   protection: Self.protection(protection),
                                                   shared: shared)
        request.fixed = fixed
        request.fixedNoReplace = !fixed && flags & mapFixedNoReplace != 0
        request.growsDown = flags & mapGrowsDown != 0
        if let file {
            if shared && protection & protWrite != 0 && !file.writable { throw .eacces }
            if !file.readable { throw .eacces }
            if shared && !file.writable { request.maxProtection = [.read, .execute] }
            request.backing = .file(file.file, offset: offset)
        }
        if request.fixedNoReplace && !Page.isAligned(address) { throw .einval }
        let mm = try task.memory()
        // RLIMIT_AS, as may_expand_vm checks it (a MAP_FIXED replacement counts in full).
        // Summing the VMAs takes the MM's lock: only when there is a limit.
        let limit = task.threadGroup?.limits[.addressSpace].soft ?? Limits.infinity
        if limit != Limits.infinity {
            let (total, overflow) = mm.mappedBytes.addingReportingOverflow(aligned)
            if overflow || total > limit { throw .enomem }
        }
        if shared, let tmpfs = file?.file as? TmpfsFile {
            return Int64(bitPattern: try tmpfs.mapShared(request, writable: protection & protWrite != 0, into: mm))
        }
        return Int64(bitPattern: try mm.map(request))
    }

    static func munmap(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0)
        guard Page.isAligned(address), let length = Page.roundUp(args.uint64(1)), length > 0,
              address <= MemoryManager.maxAddress, length <= MemoryManager.maxAddress - address
        else { throw .einval }
        try task.memory().unmap(address: address, length: length)
        return 0
    }

    static func mprotect(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), protection = args.uint64(2)
        // All 64 bits count: anything beyond PROT_READ|WRITE|EXEC|SEM and one of GROWSDOWN/GROWSUP is EINVAL.
        let growth = protection & (protGrowsDown | protGrowsUp)
        guard protection & ~(protRead | protWrite | protExec | protSem | protGrowsDown | protGrowsUp) == 0,
              growth != protGrowsDown | protGrowsUp else { throw .einval }
        guard Page.isAligned(address) else { throw .einval }
        guard args.uint64(1) > 0 else { return 0 }
        guard let length = Page.roundUp(args.uint64(1)), !address.addingReportingOverflow(length).overflow
        else { throw .enomem }
        try task.memory().protect(address: address, length: length, protection: Self.protection(protection))
        return 0
    }

    /// The VMA protection of a prot argument: its read, write and execute bits.
    static func protection(_ prot: UInt64) -> Protection {
        Protection(rawValue: UInt32(truncatingIfNeeded: prot & (protRead | protWrite | protExec)))
    }

    static func mremap(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let oldAddress = args.pointer(0)
        let flags = MemoryManager.RemapFlags(rawValue: args.uint(3))
        let newAddress = args.pointer(4)
        guard flags.rawValue & ~7 == 0 else { throw .einval }
        if (flags.contains(.fixed) || flags.contains(.dontUnmap)) && !flags.contains(.mayMove) { throw .einval }
        guard Page.isAligned(oldAddress) else { throw .einval }
        guard let oldLength = Page.roundUp(args.uint64(1)), let newLength = Page.roundUp(args.uint64(2))
        else { throw .einval }
        guard newLength > 0, newLength <= MemoryManager.maxAddress else { throw .einval }
        // old_len 0 duplicates a shared mapping; only shared anonymous memory allows it.
        guard oldLength > 0 else { throw .einval }
        if flags.contains(.fixed) && !Page.isAligned(newAddress) { throw .einval }
        let result = try task.memory().remap(oldAddress: oldAddress, oldLength: oldLength, newLength: newLength,
                                             flags: flags, newAddress: newAddress)
        return Int64(bitPattern: result)
    }

    static let madviseKnown: Set<Int32> = [0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                                           20, 21, 22, 23]
    static let madviseDontNeed: Int32 = 4

    /// mincore(2): a byte per page of the range, 1 where memory backs the
    /// page now (touched private pages, present pages of shared objects);
    /// EINVAL for an unaligned start, ENOMEM for a range past the address
    /// space or with a hole.
    static func mincore(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), length = args.uint64(1)
        guard Page.isAligned(address) else { throw .einval }
        guard let rounded = Page.roundUp(length), address <= MemoryManager.maxAddress,
              rounded <= MemoryManager.maxAddress - address else { throw .enomem }
        let mm = try task.memory()
        // A chunk at a time, so a huge range costs the Sentry no more than a chunk's vector.
        let chunk = Page.size << 16
        var done: UInt64 = 0
        while done < rounded {
            let count = min(chunk, rounded - done)
            let resident = try mm.residency(of: address + done..<address + done + count)
            try task.copyOut(resident.map { $0 ? 1 : 0 }, to: args.pointer(2) &+ done / Page.size)
            done += count
        }
        return 0
    }

    static func madvise(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), advice = args.int(2)
        guard Page.isAligned(address), madviseKnown.contains(advice) else { throw .einval }
        guard let length = Page.roundUp(args.uint64(1)), !address.addingReportingOverflow(length).overflow
        else { throw .einval }
        guard length > 0 else { return 0 }
        let mm = try task.memory()
        if advice == madviseDontNeed {
            try mm.dropPages(address: address, length: length)
        } else if !mm.isFullyMapped(address: address, length: length) {
            throw .enomem
        }
        return 0
    }

    static func msync(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), flags = args.int(2)
        guard Page.isAligned(address), flags & ~7 == 0, flags & 5 != 5 else { throw .einval }
        guard let length = Page.roundUp(args.uint64(1)), !address.addingReportingOverflow(length).overflow
        else { throw .enomem }
        guard length > 0 else { return 0 }
        try task.memory().sync(address: address, length: length)
        return 0
    }

    /// Memory is never swapped, so locking only checks the range (ENOMEM if unmapped).
    static func mlock(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let start = Page.roundDown(args.pointer(0))
        guard let end = Page.roundUp(args.pointer(0) &+ args.uint64(1)), end >= start else { throw .enomem }
        guard end > start else { return 0 }
        guard try task.memory().isFullyMapped(address: start, length: end - start) else { throw .enomem }
        return 0
    }
}

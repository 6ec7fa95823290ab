/// SysV shared memory (ipc/shm.c): shmget, shmat, shmdt, shmctl. A segment
/// is a file on the internal tmpfs (ShmSegment), and shmat a MAP_SHARED
/// mapping of it, so fork, exit, exec and checkpoints need nothing of their
/// own; its attachment count is the count of VMAs that map it.
extension SyscallTable {
    mutating func registerShm() {
        register(29, Shm.shmget)
        register(30, Shm.shmat)
        register(67, Shm.shmdt)
        register(31, Shm.shmctl)
    }
}

enum Shm {
    static func registry(_ task: Task) throws(SyscallError) -> (Kernel, ShmRegistry) {
        guard let kernel = task.kernel else { throw .einval }
        return (kernel, kernel.shm)
    }

    /// shm_nattch: the VMAs mapping the segment, in every address space.
    static func attachments(_ segment: ShmSegment, _ kernel: Kernel) -> Int {
        guard let file = segment.file else { return 0 }
        var count = 0
        kernel.forEachMemoryManager { count += $0.mappingCount(of: file) }
        return count
    }

    /// shmget(key, size, flags): IPC_PRIVATE always makes a segment; a key
    /// finds its segment (EEXIST under IPC_CREAT|IPC_EXCL, EINVAL if smaller
    /// than `size`, EACCES without the asked permissions) or, with
    /// IPC_CREAT, makes one of `size` bytes and the flags' permission bits.
    static func shmget(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let key = args.int(0), size = args.uint64(1), flags = args.int(2)
        let (kernel, registry) = try registry(task)
        let credentials = task.credentials
        let segment = try registry.lock.withLock { _ throws(SyscallError) -> ShmSegment in
            try registry.slots.get(key: key, flags: flags, credentials: credentials) { existing throws(SyscallError) in
                guard existing.size >= size else { throw .einval }
            } make: { id throws(SyscallError) in
                guard size >= LinuxIPC.SHMMIN, size <= LinuxIPC.SHMMAX, Page.roundUp(size) != nil else { throw .einval }
                guard flags & LinuxIPC.SHM_HUGETLB == 0 else { throw .enomem }
                guard let vfs = kernel.vfs else { throw .enomem }
                let file = try vfs.makeSysVShmFile(key: key, size: size, uid: credentials.effectiveUID,
                                                   gid: credentials.effectiveGID, memoryFile: kernel.memoryFile)
                return ShmSegment(permissions: IPCPermissions(key: key, id: id, credentials: credentials,
                                                              mode: UInt32(bitPattern: flags)),
                                  size: size, file: file, creatorPID: task.processID, now: IPCTime.now())
            }
        }
        return Int64(segment.permissions.id)
    }

    /// shmat(id, address, flags): maps the whole segment shared, read-only
    /// with SHM_RDONLY, executable with SHM_EXEC; at `address` (rounded down
    /// to SHMLBA with SHM_RND, EINVAL if unaligned without it), where
    /// nothing may be mapped unless SHM_REMAP; anywhere for 0.
    static func shmat(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let id = args.int(0), flags = args.int(2)
        var address = args.pointer(1)
        let (_, registry) = try registry(task)
        if address & (LinuxIPC.SHMLBA - 1) != 0 {
            guard flags & LinuxIPC.SHM_RND != 0 else { throw .einval }
            address &= ~(LinuxIPC.SHMLBA - 1)
        }
        if address == 0, flags & LinuxIPC.SHM_REMAP != 0 { throw .einval }
        var protection: Protection = flags & LinuxIPC.SHM_RDONLY != 0 ? [.read] : [.read, .write]
        var requested: UInt32 = flags & LinuxIPC.SHM_RDONLY != 0 ? 0o400 : 0o600
        if flags & LinuxIPC.SHM_EXEC != 0 {
            protection.insert(.execute)
            requested |= 0o100
        }
        guard let segment = registry.object(id: id) else { throw .einval }
        let credentials = task.credentials
        let (permitted, size, file) = registry.lock.withLock { _ in
            (segment.permissions.permits(credentials, requested: requested), segment.size, segment.file)
        }
        guard permitted else { throw .eacces }
        guard let file = file as? TmpfsFile, let length = Page.roundUp(size) else { throw .einval }
        let mm = try task.memory()
        var request = MemoryManager.MappingRequest(address: address, length: length, protection: protection,
                                                   shared: true)
        if address != 0 {
            guard address <= MemoryManager.maxAddress, length <= MemoryManager.maxAddress - address else { throw .einval }
            // Without SHM_REMAP the range must be free, checked as the mapping goes in (MAP_FIXED_NOREPLACE).
            if flags & LinuxIPC.SHM_REMAP != 0 { request.fixed = true } else { request.fixedNoReplace = true }
        }
        if flags & LinuxIPC.SHM_RDONLY != 0 { request.maxProtection = [.read, .execute] }
        request.backing = .file(file, offset: 0)
        let attached: UInt64
        do {
            attached = try file.mapShared(request, writable: flags & LinuxIPC.SHM_RDONLY == 0, into: mm)
        } catch .eexist {
            throw .einval
        }
        registry.lock.withLock { _ in
            segment.attachTime = IPCTime.now()
            segment.lastPID = task.processID
        }
        return Int64(bitPattern: attached)
    }

    /// shmdt(address): EINVAL unless a segment was attached at `address`;
    /// its mappings from there are taken out.
    static func shmdt(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0)
        guard Page.isAligned(address) else { throw .einval }
        let (kernel, registry) = try registry(task)
        let mm = try task.memory()
        guard let file = mm.fileMapped(at: address), let segment = registry.segment(file: file),
              let length = Page.roundUp(registry.lock.withLock({ _ in segment.size })),
              try mm.unmapAttachment(of: file, at: address, length: length) else { throw .einval }
        registry.lock.withLock { _ in
            segment.detachTime = IPCTime.now()
            segment.lastPID = task.processID
        }
        registry.forgetIfUnattached(segment, attachments: attachments(segment, kernel))
        return 0
    }

    static func shmctl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let id = args.int(0), command = args.int(1), buffer = args.pointer(2)
        let (kernel, registry) = try registry(task)
        let credentials = task.credentials
        switch command {
        case LinuxIPC.IPC_INFO:
            var out = [UInt8](repeating: 0, count: LinuxIPC.shminfoSize)
            out.put(LinuxIPC.SHMMAX, at: 0)
            out.put(LinuxIPC.SHMMIN, at: 8)
            out.put(UInt64(LinuxIPC.SHMMNI), at: 16)
            out.put(UInt64(LinuxIPC.SHMMNI), at: 24)
            out.put(LinuxIPC.SHMALL, at: 32)
            try task.copyOut(out, to: buffer)
            return Int64(registry.highestSlot)
        case LinuxIPC.SHM_INFO:
            let segments = registry.all
            var out = [UInt8](repeating: 0, count: LinuxIPC.shmInfoSize)
            out.put(Int32(segments.count), at: 0)
            let pages = segments.reduce(UInt64(0)) { total, segment in
                total + (Page.roundUp(registry.lock.withLock { _ in segment.size }) ?? 0) / Page.size
            }
            out.put(pages, at: 8)
            try task.copyOut(out, to: buffer)
            return Int64(registry.highestSlot)
        case LinuxIPC.SHM_STAT, LinuxIPC.SHM_STAT_ANY:
            guard let segment = registry.object(slot: Int(id)) else { throw .einval }
            return try stat(task, segment, kernel, registry, to: buffer, checked: command == LinuxIPC.SHM_STAT)
        case LinuxIPC.IPC_STAT:
            guard let segment = registry.object(id: id) else { throw .einval }
            _ = try stat(task, segment, kernel, registry, to: buffer, checked: true)
            return 0
        case LinuxIPC.IPC_SET:
            let raw = try task.copyIn(from: buffer, count: LinuxIPC.shmidSize)
            guard let segment = registry.object(id: id) else { throw .einval }
            try registry.lock.withLock { _ throws(SyscallError) in
                guard segment.permissions.mayChange(credentials) else { throw .eperm }
                segment.permissions.set(from: raw)
                segment.changeTime = IPCTime.now()
            }
            return 0
        case LinuxIPC.IPC_RMID:
            guard let segment = registry.object(id: id) else { throw .einval }
            try registry.lock.withLock { _ throws(SyscallError) in
                guard segment.permissions.mayChange(credentials) else { throw .eperm }
                segment.destroy()
            }
            registry.forgetIfUnattached(segment, attachments: attachments(segment, kernel))
            return 0
        case LinuxIPC.SHM_LOCK, LinuxIPC.SHM_UNLOCK:
            guard let segment = registry.object(id: id) else { throw .einval }
            try registry.lock.withLock { _ throws(SyscallError) in
                if !credentials.hasCapability(LinuxCapability.CAP_IPC_LOCK) {
                    let permissions = segment.permissions
                    guard credentials.effectiveUID == permissions.uid || credentials.effectiveUID == permissions.creatorUID
                    else { throw .eperm }
                }
                if command == LinuxIPC.SHM_LOCK {
                    segment.permissions.mode |= LinuxIPC.SHM_LOCKED
                } else {
                    segment.permissions.mode &= ~LinuxIPC.SHM_LOCKED
                }
            }
            return 0
        default:
            throw .einval
        }
    }

    /// IPC_STAT and SHM_STAT: struct shmid64_ds (read permission unless
    /// SHM_STAT_ANY); returns the segment's ID.
    private static func stat(_ task: Task, _ segment: ShmSegment, _ kernel: Kernel, _ registry: ShmRegistry,
                             to buffer: UInt64, checked: Bool) throws(SyscallError) -> Int64 {
        let count = attachments(segment, kernel)
        let credentials = task.credentials
        let (permitted, bytes, id) = registry.lock.withLock { _ in
            (segment.permissions.permits(credentials, requested: 0o400), segment.shmid(attachments: count),
             segment.permissions.id)
        }
        guard permitted || !checked else { throw .eacces }
        try task.copyOut(bytes, to: buffer)
        return Int64(id)
    }
}

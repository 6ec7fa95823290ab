import Glibc

/// SysV semaphores (ipc/sem.c): semget, semop, semtimedop, semctl. Sets
/// and SEM_UNDO adjustments live in the kernel's SemaphoreRegistry; a
/// blocked semop waits on its set's queue and tries again at each change.
extension SyscallTable {
    mutating func registerSemaphores() {
        register(64, Sem.semget)
        register(65) { task, args throws(SyscallError) in                                   // semop
            try Sem.semop(task, id: args.int(0), operations: args.pointer(1), count: args.uint64(2), timeout: 0)
        }
        register(220) { task, args throws(SyscallError) in                                  // semtimedop
            try Sem.semop(task, id: args.int(0), operations: args.pointer(1), count: args.uint64(2),
                          timeout: args.pointer(3))
        }
        register(66, Sem.semctl)
    }
}

enum Sem {
    static func registry(_ task: Task) throws(SyscallError) -> SemaphoreRegistry {
        guard let kernel = task.kernel else { throw .einval }
        return kernel.semaphores
    }

    /// semget(key, nsems, flags): nsems within 0...SEMMSL; a key finds its
    /// set (EEXIST under IPC_CREAT|IPC_EXCL, EINVAL if it has fewer than
    /// `nsems`, EACCES without the asked permissions) or, with IPC_CREAT
    /// (or IPC_PRIVATE), makes one of `nsems` (EINVAL for none).
    static func semget(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let key = args.int(0), count = args.int(1), flags = args.int(2)
        guard count >= 0, Int(count) <= LinuxSemaphore.SEMMSL else { throw .einval }
        let registry = try registry(task)
        let credentials = task.credentials
        let set = try registry.lock.withLock { _ throws(SyscallError) -> SemaphoreSet in
            let used = registry.slots.live.reduce(0) { $0 + $1.values.count }
            return try registry.slots.get(key: key, flags: flags, credentials: credentials) { existing throws(SyscallError) in
                guard Int(count) <= existing.values.count else { throw .einval }
            } make: { id throws(SyscallError) in
                guard count > 0 else { throw .einval }
                guard used + Int(count) <= LinuxSemaphore.SEMMNS else { throw .enospc }
                return SemaphoreSet(permissions: IPCPermissions(key: key, id: id, credentials: credentials,
                                                                mode: UInt32(bitPattern: flags)),
                                    count: Int(count), now: IPCTime.now())
            }
        }
        return Int64(set.permissions.id)
    }

    /// semop and semtimedop, in do_semtimedop's order of checks: EINVAL
    /// for no operations or a negative ID, E2BIG past SEMOPM, the
    /// operations copied (EFAULT), the timeout checked (EINVAL), the set
    /// (EINVAL), a semaphore past its size (EFBIG), permission to alter or
    /// read (EACCES). Then all of them at once, or a wait until they can
    /// be: EAGAIN under IPC_NOWAIT or past the timeout, EIDRM if the set
    /// goes meanwhile, EINTR for a handled signal; a checkpoint's pause
    /// has the call run again with the rest of its timeout.
    static func semop(_ task: Task, id: Int32, operations address: UInt64, count: UInt64,
                      timeout: UInt64) throws(SyscallError) -> Int64 {
        guard count >= 1, id >= 0 else { throw .einval }
        guard count <= UInt64(LinuxSemaphore.SEMOPM) else { throw .e2big }
        let raw = try task.copyIn(from: address, count: Int(count) * LinuxSemaphore.sembufSize)
        let operations = (0..<Int(count)).map { index in
            let offset = index * LinuxSemaphore.sembufSize
            return SemaphoreOperation(semaphore: Int(raw.littleEndian(UInt16.self, at: offset)),
                                      change: Int32(raw.littleEndian(Int16.self, at: offset + 2)),
                                      flags: raw.littleEndian(Int16.self, at: offset + 4))
        }
        var hostDeadline = task.takeReenteredTimeout()
        if timeout != 0 {
            let request = try task.copyIn(Time.Timespec.self, from: timeout)
            guard request.isValid else { throw .einval }
            if hostDeadline == nil {
                hostDeadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingSaturating(request.total)
            }
        } else {
            hostDeadline = nil
        }
        let registry = try registry(task)
        let waitedOn = task.takeReenteredIPCObject()
        guard let set = registry.object(id: id) else { throw waitedOn == id ? .eidrm : .einval }
        let (size, permissions) = registry.lock.withLock { _ in (set.values.count, set.permissions) }
        guard operations.allSatisfy({ $0.semaphore < size }) else { throw .efbig }
        let alters = operations.contains { $0.change != 0 }
        guard permissions.permits(task.credentials, requested: alters ? 0o200 : 0o400) else { throw .eacces }

        defer { registry.lock.withLock { _ in set.waiters[ObjectIdentifier(task)] = nil } }
        return try task.waitForIPC(on: set.queue, id: id, until: hostDeadline, restartable: false) { () throws(SyscallError) -> Int64? in
            let outcome = try registry.perform(operations, on: set, processID: task.processID, now: IPCTime.now())
            guard case .blocked(let semaphore, let forZero, let noWait) = outcome else { return 0 }
            if noWait { throw .eagain }
            registry.lock.withLock { _ in set.waiters[ObjectIdentifier(task)] = (semaphore, forZero) }
            return nil
        }
    }

    /// semctl(id, semnum, cmd, arg), each command as Linux checks it.
    static func semctl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let id = args.int(0), number = args.int(1), command = args.int(2), argument = args.pointer(3)
        guard id >= 0 else { throw .einval }
        let registry = try registry(task)
        let credentials = task.credentials
        switch command {
        case LinuxIPC.IPC_INFO, LinuxSemaphore.SEM_INFO:
            let sets = registry.all
            var out = [UInt8](repeating: 0, count: LinuxSemaphore.seminfoSize)
            let info = command == LinuxSemaphore.SEM_INFO
            let semaphores = registry.lock.withLock { _ in sets.reduce(0) { $0 + $1.values.count } }
            let fields: [Int] = [LinuxSemaphore.SEMMNS, LinuxSemaphore.SEMMNI, LinuxSemaphore.SEMMNS, LinuxSemaphore.SEMMNS,
                                 LinuxSemaphore.SEMMSL, LinuxSemaphore.SEMOPM, LinuxSemaphore.SEMOPM,
                                 info ? sets.count : 16, Int(LinuxSemaphore.SEMVMX),
                                 info ? semaphores : Int(LinuxSemaphore.SEMAEM)]
            for (index, field) in fields.enumerated() { out.put(Int32(clamping: field), at: index * 4) }
            try task.copyOut(out, to: argument)
            return Int64(registry.highestSlot)
        case LinuxIPC.IPC_STAT, LinuxSemaphore.SEM_STAT, LinuxSemaphore.SEM_STAT_ANY:
            let set = command == LinuxIPC.IPC_STAT ? registry.object(id: id) : registry.object(slot: Int(id))
            guard let set else { throw .einval }
            let (permissions, bytes) = registry.lock.withLock { _ in (set.permissions, set.semid) }
            if command != LinuxSemaphore.SEM_STAT_ANY {
                guard permissions.permits(credentials, requested: 0o400) else { throw .eacces }
            }
            try task.copyOut(bytes, to: argument)
            return command == LinuxIPC.IPC_STAT ? 0 : Int64(permissions.id)
        case LinuxIPC.IPC_SET:
            let raw = try task.copyIn(from: argument, count: LinuxSemaphore.semidSize)
            guard let set = registry.object(id: id) else { throw .einval }
            try registry.lock.withLock { _ throws(SyscallError) in
                guard set.permissions.mayChange(credentials) else { throw .eperm }
                set.permissions.set(from: raw)
                set.changeTime = IPCTime.now()
            }
            return 0
        case LinuxIPC.IPC_RMID:
            guard let set = registry.object(id: id) else { throw .einval }
            guard registry.lock.withLock({ _ in set.permissions.mayChange(credentials) }) else { throw .eperm }
            registry.remove(set)
            return 0
        case LinuxSemaphore.SETVAL:
            let value = Int32(truncatingIfNeeded: argument)
            guard value >= 0, value <= LinuxSemaphore.SEMVMX else { throw .erange }
            guard let set = registry.object(id: id) else { throw .einval }
            let (size, permissions) = registry.lock.withLock { _ in (set.values.count, set.permissions) }
            guard number >= 0, Int(number) < size else { throw .einval }
            guard permissions.permits(credentials, requested: 0o200) else { throw .eacces }
            registry.setValues([Int(number): UInt16(value)], of: set, processID: task.processID, now: IPCTime.now())
            return 0
        case LinuxSemaphore.GETALL, LinuxSemaphore.SETALL, LinuxSemaphore.GETVAL, LinuxSemaphore.GETPID,
             LinuxSemaphore.GETNCNT, LinuxSemaphore.GETZCNT:
            guard let set = registry.object(id: id) else { throw .einval }
            let setting = command == LinuxSemaphore.SETALL
            let (size, permissions) = registry.lock.withLock { _ in (set.values.count, set.permissions) }
            guard permissions.permits(credentials, requested: setting ? 0o200 : 0o400) else { throw .eacces }
            switch command {
            case LinuxSemaphore.GETALL:
                let values = registry.lock.withLock { _ in set.values }
                try task.copyOut(values.withUnsafeBytes { Array($0) }, to: argument)
                return 0
            case LinuxSemaphore.SETALL:
                let raw = try task.copyIn(from: argument, count: size * 2)
                var values: [Int: UInt16] = [:]
                for index in 0..<size {
                    let value = raw.littleEndian(UInt16.self, at: index * 2)
                    guard Int32(value) <= LinuxSemaphore.SEMVMX else { throw .erange }
                    values[index] = value
                }
                registry.setValues(values, of: set, processID: task.processID, now: IPCTime.now())
                return 0
            default:
                guard number >= 0, Int(number) < size else { throw .einval }
                let index = Int(number)
                return registry.lock.withLock { _ -> Int64 in
                    switch command {
                    case LinuxSemaphore.GETVAL: Int64(set.values[index])
                    case LinuxSemaphore.GETPID: Int64(set.lastPIDs[index])
                    case LinuxSemaphore.GETNCNT: Int64(set.waiting(on: index, forZero: false))
                    default: Int64(set.waiting(on: index, forZero: true))
                    }
                }
            }
        default:
            throw .einval
        }
    }
}

import Glibc

/// epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait,
/// epoll_pwait2 (fs/eventpoll.c); the instance is Epoll/EpollFile.swift.
extension SyscallTable {
    mutating func registerEpoll() {
        register(213, EpollSyscalls.epollCreate)
        register(291, EpollSyscalls.epollCreate1)
        register(233, EpollSyscalls.epollCtl)
        register(232, EpollSyscalls.epollWait)
        register(281, EpollSyscalls.epollPwait)
        register(441, EpollSyscalls.epollPwait2)
    }
}

enum EpollSyscalls {
    /// epoll_create(size): EINVAL unless size > 0 (otherwise unused).
    static func epollCreate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.int(0) > 0 else { throw .einval }
        return try create(task, flags: 0)
    }

    static func epollCreate1(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(0)
        guard flags & ~EpollABI.EPOLL_CLOEXEC == 0 else { throw .einval }
        return try create(task, flags: flags)
    }

    private static func create(_ task: Task, flags: UInt32) throws(SyscallError) -> Int64 {
        Int64(try task.fdTable.install(EpollFile(flags: 0), closeOnExec: flags & EpollABI.EPOLL_CLOEXEC != 0,
                                       limit: task.fileDescriptorLimit))
    }

    /// do_epoll_ctl, its checks in Linux's order: the event read (EFAULT),
    /// both FDs (EBADF), a target without poll (EPERM), the same file or an
    /// epfd that is no epoll (EINVAL), EPOLLEXCLUSIVE's limits (EINVAL), a
    /// loop or nesting too deep (ELOOP), then the operation's own errors.
    static func epollCtl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let epfd = args.int(0), operation = args.int(1), fd = args.int(2)
        var events: UInt32 = 0, data: UInt64 = 0
        if operation != EpollABI.EPOLL_CTL_DEL {
            let raw = try task.copyIn(from: args.pointer(3), count: EpollABI.eventSize)
            raw.withUnsafeBytes { bytes in
                events = bytes.loadUnaligned(as: UInt32.self)
                data = bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self)
            }
        }
        let file = try task.fdTable.get(epfd)
        let target = try task.fdTable.get(fd)
        guard target.supportsPoll else { throw .eperm }
        guard target !== file, let epoll = file as? EpollFile else { throw .einval }
        if events & EpollABI.EPOLLWAKEUP != 0, !task.credentials.hasCapability(EpollABI.CAP_BLOCK_SUSPEND) {
            events &= ~EpollABI.EPOLLWAKEUP
        }
        if operation != EpollABI.EPOLL_CTL_DEL, events & EpollABI.EPOLLEXCLUSIVE != 0 {
            if operation == EpollABI.EPOLL_CTL_MOD { throw .einval }
            if operation == EpollABI.EPOLL_CTL_ADD,
               target is EpollFile || events & ~EpollABI.exclusiveAllowed != 0 { throw .einval }
        }
        if operation == EpollABI.EPOLL_CTL_ADD, let nested = target as? EpollFile {
            if epoll.isReached(from: nested) { throw .eloop }
            if 1 + nested.depthBelow() + epoll.depthAbove() > EpollABI.maximumNesting { throw .eloop }
        }
        switch operation {
        case EpollABI.EPOLL_CTL_ADD: try epoll.add(target, fd: fd, events: events, data: data)
        case EpollABI.EPOLL_CTL_MOD: try epoll.modify(target, fd: fd, events: events, data: data)
        case EpollABI.EPOLL_CTL_DEL: try epoll.remove(target, fd: fd)
        default: throw .einval
        }
        return 0
    }

    static func epollWait(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try restart(task, epfd: args.int(0), events: args.pointer(1), maximum: args.int(2),
                    deadline: try deadline(task, milliseconds: args.int(3)))
    }

    /// epoll_wait, and restart_syscall after an interrupted one: the same
    /// instance and deadline, kept in the restart block if interrupted again,
    /// so a checkpoint does not start its timeout over (EINTR if a handler runs).
    static func restart(_ task: Task, epfd: Int32, events: UInt64, maximum: Int32, deadline: Int64?)
        throws(SyscallError) -> Int64 {
        do {
            return try wait(task, epfd: epfd, events: events, maximum: maximum, deadline: deadline)
        } catch .erestartnohand {
            task.restartBlock = .epollWait(epfd: epfd, events: events, maximum: maximum, deadline: deadline)
            throw .erestartRestartblock
        }
    }

    /// epoll_pwait: epoll_wait with a signal mask in force meanwhile.
    static func epollPwait(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let deadline = try deadline(task, milliseconds: args.int(3))
        return try task.withTemporarySignalMask(at: args.pointer(4), size: args.uint64(5)) { () throws(SyscallError) -> Int64 in
            try wait(task, epfd: args.int(0), events: args.pointer(1), maximum: args.int(2), deadline: deadline)
        }
    }

    /// epoll_pwait2: the timeout a timespec (null: none), EINVAL if invalid.
    static func epollPwait2(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        var deadline: Int64?
        if args.pointer(3) != 0 {
            let timeout = try task.copyIn(Time.Timespec.self, from: args.pointer(3))
            guard timeout.isValid else { throw .einval }
            deadline = try Time.now(task, Time.monotonic).addingSaturating(timeout.total)
        }
        return try task.withTemporarySignalMask(at: args.pointer(4), size: args.uint64(5)) { () throws(SyscallError) -> Int64 in
            try wait(task, epfd: args.int(0), events: args.pointer(1), maximum: args.int(2), deadline: deadline)
        }
    }

    /// epoll_wait's millisecond timeout as a CLOCK_MONOTONIC deadline; a negative one is none.
    private static func deadline(_ task: Task, milliseconds: Int32) throws(SyscallError) -> Int64? {
        guard milliseconds >= 0 else { return nil }
        return try Time.now(task, Time.monotonic).addingSaturating(Int64(milliseconds) * 1_000_000)
    }

    /// do_epoll_wait: EINVAL for maxevents outside 1...EP_MAX_EVENTS, EFAULT
    /// for a buffer outside user space, EBADF, EINVAL for an epfd that is no
    /// epoll. Blocks the task's waiter on the instance's queue until an
    /// event, the deadline, or an interrupt (ERESTARTNOHAND: EINTR if a
    /// handler runs, whatever SA_RESTART says, else the call restarts; the
    /// p variants restart with their whole timeout, as ppoll's mask is
    /// gone by then).
    private static func wait(_ task: Task, epfd: Int32, events address: UInt64, maximum: Int32, deadline: Int64?)
        throws(SyscallError) -> Int64 {
        guard maximum > 0, maximum <= EpollABI.maximumEvents else { throw .einval }
        let (end, overflow) = address.addingReportingOverflow(UInt64(maximum) * UInt64(EpollABI.eventSize))
        guard !overflow, end <= MemoryManager.maxAddress else { throw .efault }
        guard let epoll = try task.fdTable.get(epfd) as? EpollFile else { throw .einval }
        var entry: WaitEntry?
        defer { if let entry { epoll.queue.unregister(entry) } }
        while true {
            task.waiter.reset()
            let events = epoll.takeEvents(maximum: Int(maximum))
            if !events.isEmpty {
                // struct epoll_event is packed on x86-64: events, then data at offset 4.
                let size = events.count * EpollABI.eventSize
                try withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { buffer throws(SyscallError) in
                    for (index, event) in events.enumerated() {
                        let offset = index * EpollABI.eventSize
                        buffer.storeBytes(of: event.events, toByteOffset: offset, as: UInt32.self)
                        buffer.storeBytes(of: event.data, toByteOffset: offset + 4, as: UInt64.self)
                    }
                    try task.copyOut(UnsafeRawBufferPointer(buffer), to: address)
                }
                return Int64(events.count)
            }
            let now = try Time.now(task, Time.monotonic)
            if let deadline, now >= deadline { return 0 }
            if entry == nil {
                let registered = task.waiter.entry(for: .readable)
                epoll.queue.register(registered)
                entry = registered
                continue
            }
            let hostDeadline = deadline.map { Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingSaturating($0 - now) }
            do {
                try task.waiter.block(untilHostMonotonic: hostDeadline)
            } catch {
                throw task.mustExit ? .eintr : .erestartnohand
            }
        }
    }
}

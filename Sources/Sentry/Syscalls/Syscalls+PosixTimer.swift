/// timer_create, timer_settime, timer_gettime, timer_getoverrun,
/// timer_delete (kernel/time/posix-timers.c). The timers live in the
/// process (SignalTimers.swift); wall-clock ones fire from the kernel's timer
/// thread, CPU-clock ones from the process's own CPU time.
extension SyscallTable {
    mutating func registerPosixTimers() {
        register(222, PosixTimerSyscalls.timerCreate)
        register(223, PosixTimerSyscalls.timerSettime)
        register(224, PosixTimerSyscalls.timerGettime)
        register(225, PosixTimerSyscalls.timerGetoverrun)
        register(226, PosixTimerSyscalls.timerDelete)
    }
}

enum PosixTimerSyscalls {
    /// struct itimerspec.
    struct Itimerspec: BitwiseCopyable {
        var interval: Time.Timespec
        var value: Time.Timespec
    }

    /// timer_create(clockid, sigevent, timerid): EFAULT for the sigevent;
    /// EINVAL for an unknown clock, EOPNOTSUPP for one without timers;
    /// EAGAIN past RLIMIT_SIGPENDING; EINVAL for a bad sigevent; EFAULT for
    /// the ID (the timer is gone again).
    static func timerCreate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let event: RawSignalEvent? = args.pointer(1) == 0 ? nil : try task.copyIn(RawSignalEvent.self, from: args.pointer(1))
        guard let group = task.threadGroup, let kernel = task.kernel else { throw .einval }
        let clock = try timerClock(task, args.int(0))
        if let event { try check(event, group) }
        let id = try group.createTimer(clock: clock, event: event, creator: task)
        do {
            try task.copyOut(value: id, to: args.pointer(2))
        } catch {
            try? group.deleteTimer(id, clocks: kernel.clocks)
            throw error
        }
        return 0
    }

    /// The clock a timer runs on: a known clock with timers (EINVAL for an
    /// unknown one, EOPNOTSUPP for one without timers, the alarm clocks
    /// included: there is no RTC), or a CPU clock. Of the negative CPU
    /// clocks, the caller's own process or thread, counting user and system
    /// time, is supported; another's, or user time alone, is EINVAL.
    private static func timerClock(_ task: Task, _ raw: Int32) throws(SyscallError) -> Int32 {
        guard raw < 0 else {
            guard (try? Time.now(task, raw)) != nil else { throw .einval }
            guard SignalTimers.timerClocks.contains(raw) else { throw .eopnotsupp }
            return raw
        }
        let perThread = raw & TimerABI.CPUCLOCK_PERTHREAD_MASK != 0
        let kind = raw & TimerABI.CPUCLOCK_CLOCK_MASK
        let pid = ~(raw >> TimerABI.CPUCLOCK_PID_SHIFT)
        guard kind == TimerABI.CPUCLOCK_SCHED || kind == TimerABI.CPUCLOCK_PROF,
              pid == 0 || pid == (perThread ? task.id : task.processID) else { throw .einval }
        return perThread ? Time.threadCPU : Time.processCPU
    }

    /// good_sigevent: SIGEV_THREAD_ID names a thread of this process; a
    /// signalling timer names a signal in 1...SIGRTMAX.
    private static func check(_ event: RawSignalEvent, _ group: ThreadGroup) throws(SyscallError) {
        switch event.notify {
        case TimerABI.SIGEV_SIGNAL, TimerABI.SIGEV_THREAD, TimerABI.SIGEV_THREAD_ID:
            if event.notify == TimerABI.SIGEV_THREAD_ID, !group.hasMember(event.threadID) { throw .einval }
            guard event.signal > 0, event.signal <= TimerABI.SIGRTMAX else { throw .einval }
        case TimerABI.SIGEV_NONE:
            break
        default:
            throw .einval
        }
    }

    /// timer_settime(timerid, flags, new, old): EINVAL without a new value,
    /// EFAULT reading it, EINVAL for an invalid time or an unknown timer;
    /// the old setting is written after the timer is set.
    static func timerSettime(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.pointer(2) != 0 else { throw .einval }
        let new = try task.copyIn(Itimerspec.self, from: args.pointer(2))
        guard new.interval.isValid, new.value.isValid, let group = task.threadGroup,
              let kernel = task.kernel else { throw .einval }
        let old = try group.setTimer(args.int(0), absolute: args.int(1) & TimerABI.TIMER_ABSTIME != 0,
                                     value: new.value.total, interval: new.interval.total, clocks: kernel.clocks)
        kernel.timers.rearm(kernel)
        if args.pointer(3) != 0 { try task.copyOut(value: itimerspec(old), to: args.pointer(3)) }
        return 0
    }

    static func timerGettime(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let group = task.threadGroup, let kernel = task.kernel else { throw .einval }
        let current = try group.timerSetting(args.int(0), clocks: kernel.clocks)
        try task.copyOut(value: itimerspec(current), to: args.pointer(1))
        return 0
    }

    static func timerGetoverrun(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let group = task.threadGroup else { throw .einval }
        return Int64(try group.timerOverrun(args.int(0)))
    }

    static func timerDelete(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let group = task.threadGroup, let kernel = task.kernel else { throw .einval }
        try group.deleteTimer(args.int(0), clocks: kernel.clocks)
        return 0
    }

    static func itimerspec(_ setting: (remaining: Int64, interval: Int64)) -> Itimerspec {
        Itimerspec(interval: Time.Timespec(setting.interval), value: Time.Timespec(setting.remaining))
    }
}

/// alarm, setitimer, getitimer (kernel/time/itimer.c): ITIMER_REAL's
/// SIGALRM comes from the kernel's timer thread (IntervalTimers.swift),
/// ITIMER_VIRTUAL's SIGVTALRM and ITIMER_PROF's SIGPROF from the process's
/// CPU time (SignalTimers.swift). The POSIX timers are in Syscalls+PosixTimer.swift.
extension SyscallTable {
    mutating func registerTimers() {
        register(37, IntervalTimerSyscalls.alarm)
        register(36, IntervalTimerSyscalls.getitimer)
        register(38, IntervalTimerSyscalls.setitimer)
        registerPosixTimers()
        registerTimerFD()
    }
}

enum IntervalTimerSyscalls {
    /// struct __kernel_old_itimerval.
    struct Itimerval: BitwiseCopyable {
        var interval: PollSyscalls.Timeval
        var value: PollSyscalls.Timeval
    }

    static func getitimer(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let group = task.threadGroup else { throw .einval }
        let current: (remaining: Int64, interval: Int64)
        switch args.int(0) {
        case IntervalTimerABI.ITIMER_REAL: current = group.realTimer(now: try Time.now(task, Time.monotonic))
        case IntervalTimerABI.ITIMER_VIRTUAL: current = group.cpuIntervalTimer(profiling: false)
        case IntervalTimerABI.ITIMER_PROF: current = group.cpuIntervalTimer(profiling: true)
        default: throw .einval
        }
        try task.copyOut(value: itimerval(current), to: args.pointer(1))
        return 0
    }

    static func setitimer(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        // A NULL new value disarms, as Linux still allows.
        var new = (value: Int64(0), interval: Int64(0))
        if args.pointer(1) != 0 {
            let raw = try task.copyIn(Itimerval.self, from: args.pointer(1))
            new = (try nanoseconds(raw.value), try nanoseconds(raw.interval))
        }
        guard let group = task.threadGroup, let kernel = task.kernel else { throw .einval }
        let old: (remaining: Int64, interval: Int64)
        switch args.int(0) {
        case IntervalTimerABI.ITIMER_REAL:
            old = try arm(task, group, value: new.value, interval: new.interval)
        case IntervalTimerABI.ITIMER_VIRTUAL, IntervalTimerABI.ITIMER_PROF:
            old = group.setCPUIntervalTimer(profiling: args.int(0) == IntervalTimerABI.ITIMER_PROF, value: new.value,
                                            interval: new.interval, clocks: kernel.clocks)
            kernel.timers.rearm(kernel)
        default:
            throw .einval
        }
        if args.pointer(2) != 0 { try task.copyOut(value: itimerval(old), to: args.pointer(2)) }
        return 0
    }

    /// alarm(2): ITIMER_REAL for `seconds` without a period; the old time left
    /// in seconds, rounded to nearest and never 0 while it was armed (alarm_setitimer).
    static func alarm(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let group = task.threadGroup else { throw .einval }
        let seconds = Int64(args.uint(0))
        let old = try arm(task, group, value: seconds * Time.nanosecondsPerSecond, interval: 0)
        let left = Time.Timespec(old.remaining)
        let roundsUp = (left.seconds == 0 && left.nanoseconds != 0) || left.nanoseconds >= Time.nanosecondsPerSecond / 2
        return roundsUp ? left.seconds + 1 : left.seconds
    }

    private static func arm(_ task: Task, _ group: ThreadGroup, value: Int64,
                            interval: Int64) throws(SyscallError) -> (remaining: Int64, interval: Int64) {
        guard let kernel = task.kernel else { throw .einval }
        let old = group.setRealTimer(value: value, interval: interval, now: kernel.clocks.monotonic())
        kernel.timers.rearm(kernel)
        return old
    }

    /// A timeval in ns; EINVAL when tv_usec is outside 0..<1000000 or the time is negative.
    private static func nanoseconds(_ time: PollSyscalls.Timeval) throws(SyscallError) -> Int64 {
        guard time.seconds >= 0, time.microseconds >= 0,
              time.microseconds < IntervalTimerABI.microsecondsPerSecond else { throw .einval }
        return Time.Timespec(seconds: time.seconds,
                             nanoseconds: time.microseconds * IntervalTimerABI.nanosecondsPerMicrosecond).total
    }

    private static func itimerval(_ timer: (remaining: Int64, interval: Int64)) -> Itimerval {
        Itimerval(interval: timeval(timer.interval), value: timeval(timer.remaining))
    }

    private static func timeval(_ nanoseconds: Int64) -> PollSyscalls.Timeval {
        let time = Time.Timespec(nanoseconds)
        return PollSyscalls.Timeval(seconds: time.seconds,
                                    microseconds: time.nanoseconds / IntervalTimerABI.nanosecondsPerMicrosecond)
    }
}

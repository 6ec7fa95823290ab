import Glibc

/// clock_gettime, clock_getres, gettimeofday, time, nanosleep, clock_nanosleep.
/// Calls the vDSO does not answer (and every call until the TSC is calibrated,
/// or on a CPU without an invariant TSC) trap here; monotonic time is the Sentry's
/// virtual clock (continuing across restore) and realtime is the host's.
extension SyscallTable {
    mutating func registerTime() {
        register(228, Time.clockGettime)
        register(229, Time.clockGetres)
        register(96, Time.gettimeofday)
        register(201, Time.time)
        register(35, Time.nanosleep)
        register(230, Time.clockNanosleep)
        register(219, Time.restartSyscall)
        register(159) { task, args throws(SyscallError) in try Time.adjtimex(task, args.pointer(0)) }   // adjtimex
        register(305) { task, args throws(SyscallError) in                                              // clock_adjtime
            guard args.int(0) == Time.realtime else { throw .einval }
            return try Time.adjtimex(task, args.pointer(1))
        }
        // The container shares the host's clock and may not set it: EPERM, as
        // Linux answers a task without CAP_SYS_TIME.
        register(227, failingWith: .eperm)                                                  // clock_settime
        register(164, failingWith: .eperm)                                                  // settimeofday
    }
}

enum Time {
    /// adjtimex(2) and clock_adjtime(CLOCK_REALTIME): reading (modes 0)
    /// gives the time and the state of a clock no NTP daemon here
    /// disciplines (STA_UNSYNC, TIME_ERROR), as a Linux without one; any
    /// change is the host's to make (EPERM).
    static func adjtimex(_ task: Task, _ address: UInt64) throws(SyscallError) -> Int64 {
        let request = try task.copyIn(from: address, count: 208)
        guard request.littleEndian(UInt32.self, at: 0) == 0 else { throw .eperm }
        let now = task.kernel?.clocks.realtime() ?? Clocks.hostNanoseconds(CLOCK_REALTIME)
        let phaseLimit: Int64 = 16_000_000, unsynchronized: Int32 = 0x40, timeError: Int64 = 5
        var out = [UInt8](repeating: 0, count: 208)
        out.put(phaseLimit, at: 24)                     // maxerror
        out.put(phaseLimit, at: 32)                     // esterror
        out.put(unsynchronized, at: 40)                 // status
        out.put(Int64(2), at: 48)                       // constant
        out.put(Int64(1), at: 56)                       // precision
        out.put(Int64(500 << 16), at: 64)               // tolerance: 500 ppm, scaled
        out.put(now / nanosecondsPerSecond, at: 72)     // time.tv_sec
        out.put(now % nanosecondsPerSecond / 1000, at: 80)
        out.put(Int64(1_000_000 / 100), at: 88)         // tick: USER_HZ 100
        try task.copyOut(out, to: address)
        return timeError
    }

    static let realtime: Int32 = 0, monotonic: Int32 = 1, processCPU: Int32 = 2, threadCPU: Int32 = 3
    static let monotonicRaw: Int32 = 4, realtimeCoarse: Int32 = 5, monotonicCoarse: Int32 = 6
    static let boottime: Int32 = 7, realtimeAlarm: Int32 = 8, boottimeAlarm: Int32 = 9, tai: Int32 = 11
    static let nanosecondsPerSecond: Int64 = 1_000_000_000
    /// CONFIG_HZ=250: the coarse clocks tick every 4 ms.
    static let coarseResolution: Int64 = 4_000_000

    struct Timespec: BitwiseCopyable {
        var seconds: Int64
        var nanoseconds: Int64

        init(seconds: Int64, nanoseconds: Int64) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
        }

        init(_ total: Int64) {
            seconds = total / nanosecondsPerSecond
            nanoseconds = total % nanosecondsPerSecond
            if nanoseconds < 0 {
                seconds -= 1
                nanoseconds += nanosecondsPerSecond
            }
        }

        var isValid: Bool { seconds >= 0 && nanoseconds >= 0 && nanoseconds < nanosecondsPerSecond }

        /// Total nanoseconds, saturating instead of overflowing.
        var total: Int64 {
            let (product, overflow) = seconds.multipliedReportingOverflow(by: nanosecondsPerSecond)
            if overflow { return .max }
            let (sum, overflowSum) = product.addingReportingOverflow(nanoseconds)
            return overflowSum ? .max : sum
        }
    }

    /// The current value of `clock` in nanoseconds; EINVAL for an unknown clock.
    static func now(_ task: Task, _ clock: Int32) throws(SyscallError) -> Int64 {
        guard let clocks = task.kernel?.clocks else { throw .einval }
        switch clock {
        case realtime, realtimeCoarse, realtimeAlarm, tai: return clocks.realtime()
        case monotonic, monotonicRaw, monotonicCoarse, boottime, boottimeAlarm: return clocks.monotonic()
        case processCPU: return task.processCPUTime.total
        case threadCPU: return task.userTime + task.systemTime
        default: throw .einval
        }
    }

    static func clockGettime(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let value = try now(task, args.int(0))
        try task.copyOut(value: Timespec(value), to: args.pointer(1))
        return 0
    }

    static func clockGetres(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let clock = args.int(0)
        _ = try now(task, clock)
        let resolution = clock == realtimeCoarse || clock == monotonicCoarse ? coarseResolution : 1
        if args.pointer(1) != 0 { try task.copyOut(value: Timespec(resolution), to: args.pointer(1)) }
        return 0
    }

    static func gettimeofday(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        if args.pointer(0) != 0 {
            let value = Timespec(try now(task, realtime))
            try task.copyOut(value: (value.seconds, value.nanoseconds / 1000), to: args.pointer(0))
        }
        if args.pointer(1) != 0 { try task.copyOut(value: (Int32(0), Int32(0)), to: args.pointer(1)) }
        return 0
    }

    static func time(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let seconds = try now(task, realtime) / nanosecondsPerSecond
        if args.pointer(0) != 0 { try task.copyOut(value: seconds, to: args.pointer(0)) }
        return seconds
    }

    static func nanosleep(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let request = try task.copyIn(Timespec.self, from: args.pointer(0))
        guard request.isValid else { throw .einval }
        try sleep(task, clock: monotonic, until: (try now(task, monotonic)).addingSaturating(request.total),
                  remainder: args.pointer(1))
        return 0
    }

    static func clockNanosleep(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let clock = args.int(0), flags = args.int(1)
        guard [realtime, monotonic, boottime, tai, processCPU, realtimeAlarm, boottimeAlarm].contains(clock) else {
            throw clock == threadCPU ? .einval : (clock < 0 ? .einval : .eopnotsupp)
        }
        let request = try task.copyIn(Timespec.self, from: args.pointer(2))
        guard request.isValid else { throw .einval }
        let absolute = flags & 1 != 0
        // A relative sleep is a duration (Linux's relative hrtimer, which a
        // change of the wall clock does not move): on a wall clock it is
        // measured on the monotonic one, as glibc's nanosleep asks with
        // CLOCK_REALTIME. Else a restore's downtime, which the monotonic
        // clock leaves out and the wall clock counts, cut it short.
        let measuredOn = absolute || ![realtime, realtimeAlarm, tai].contains(clock) ? clock : monotonic
        let deadline = absolute ? request.total : (try now(task, measuredOn)).addingSaturating(request.total)
        try sleep(task, clock: measuredOn, until: deadline, remainder: absolute ? 0 : args.pointer(3))
        return 0
    }

    /// Sleeps until `clock` reads `deadline`. Interrupted for an exit it is
    /// EINTR (nobody sees it); interrupted otherwise (a signal, a checkpoint)
    /// it returns ERESTART_RESTARTBLOCK with the deadline kept in the task:
    /// EINTR if a handler runs, else restart_syscall sleeps only what
    /// remains, even after a restore.
    static func sleep(_ task: Task, clock: Int32, until deadline: Int64, remainder: UInt64) throws(SyscallError) {
        while true {
            let current = try now(task, clock)
            if current >= deadline { return }
            let hostDeadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingSaturating(deadline - current)
            do {
                try task.waiter.block(untilHostMonotonic: hostDeadline)
                continue
            } catch {}
            // What remains is written at every interruption, as Linux's
            // do_nanosleep: a handler's EINTR reports it.
            if remainder != 0 {
                try? task.copyOut(value: Timespec(max(deadline - (try now(task, clock)), 0)), to: remainder)
            }
            if task.mustExit { throw .eintr }
            task.restartBlock = .sleep(clock: clock, deadline: deadline, remainder: remainder)
            throw .erestartRestartblock
        }
    }

    /// restart_syscall(2): resumes what the interrupted call left in the task;
    /// EINTR when there is nothing to resume, as Linux's do_no_restart_syscall.
    static func restartSyscall(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let block = task.restartBlock else { throw .eintr }
        task.restartBlock = nil
        switch block {
        case .sleep(let clock, let deadline, let remainder):
            try sleep(task, clock: clock, until: deadline, remainder: remainder)
            return 0
        case .poll(let fds, let count, let deadline):
            return try PollSyscalls.restart(task, fds: fds, count: count, deadline: deadline)
        case .epollWait(let epfd, let events, let maximum, let deadline):
            return try EpollSyscalls.restart(task, epfd: epfd, events: events, maximum: maximum, deadline: deadline)
        case .futexLockPI(let address, let shared, let clock, let deadline):
            return try Futex.restartLockPI(task, address: address, shared: shared, clock: clock, deadline: deadline)
        }
    }
}

extension Int64 {
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}

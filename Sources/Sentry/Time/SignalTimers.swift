import Glibc
import State
import Synchronization

/// A POSIX timer (timer_create), kernel/time/posix-timers.c's k_itimer: the
/// clock it runs on, how it notifies, its deadline on that clock (0:
/// disarmed) and its period. A periodic timer whose signal is queued fires
/// no more until the signal is taken; the taking rearms it past the current
/// time and counts the periods missed as si_overrun (posixtimer_deliver_signal).
struct PosixTimer: SavableStruct, Equatable, Sendable {
    static let savedTypeName = "sentry.PosixTimer"

    var id: Int32
    /// Time.realtime, .monotonic, .boottime, .tai, .processCPU or .threadCPU.
    var clock: Int32
    /// SIGEV_SIGNAL (SIGEV_THREAD as the kernel sees it), SIGEV_THREAD_ID or SIGEV_NONE.
    var notify: Int32
    var signal: Signal
    /// SIGEV_THREAD_ID's thread (0: the process).
    var targetTaskID: Int32
    /// The thread whose CPU time a CLOCK_THREAD_CPUTIME_ID timer counts.
    var cpuTaskID: Int32
    /// sigev_value, what si_value carries.
    var value: UInt64
    var deadline: Int64 = 0
    var interval: Int64 = 0
    /// Its signal is queued and not yet taken.
    var signalQueued = false
    /// Bumped at every timer_settime: a queued signal of an older arming is
    /// dropped when taken, as Linux's it_signal_seq. Never 0 (0 marks a
    /// siginfo no timer of ours queued).
    var generation: UInt32 = 1
    /// timer_getoverrun: the overrun of the last signal taken.
    var overrunLast: Int32 = 0

    init(id: Int32, clock: Int32, notify: Int32, signal: Signal, targetTaskID: Int32, cpuTaskID: Int32, value: UInt64) {
        self.id = id
        self.clock = clock
        self.notify = notify
        self.signal = signal
        self.targetTaskID = targetTaskID
        self.cpuTaskID = cpuTaskID
        self.value = value
    }

    var countsCPU: Bool { clock == Time.processCPU || clock == Time.threadCPU }
    var sendsSignal: Bool { notify != TimerABI.SIGEV_NONE }

    func save(to sink: inout SaveSink) throws {
        try sink.save("id", id)
        try sink.save("clock", clock)
        try sink.save("notify", notify)
        try sink.save("signal", signal)
        try sink.save("targetTaskID", targetTaskID)
        try sink.save("cpuTaskID", cpuTaskID)
        try sink.save("value", value)
        try sink.save("deadline", deadline)
        try sink.save("interval", interval)
        try sink.save("signalQueued", signalQueued)
        try sink.save("generation", generation)
        try sink.save("overrunLast", overrunLast)
    }

    init(from source: inout LoadSource) throws {
        id = try source.load("id")
        clock = try source.load("clock")
        notify = try source.load("notify")
        signal = try source.load("signal")
        targetTaskID = try source.load("targetTaskID")
        cpuTaskID = try source.load("cpuTaskID")
        value = try source.load("value")
        deadline = try source.load("deadline")
        interval = try source.load("interval")
        signalQueued = try source.load("signalQueued")
        generation = try source.load("generation")
        overrunLast = try source.load("overrunLast")
        try ImageValidation.require(id >= 0, field: "id", "a negative timer ID")
        try ImageValidation.require(SignalTimers.timerClocks.contains(clock), field: "clock", "clock \(clock) has no timers")
        try ImageValidation.require([TimerABI.SIGEV_SIGNAL, TimerABI.SIGEV_THREAD, TimerABI.SIGEV_THREAD_ID,
                                     TimerABI.SIGEV_NONE].contains(notify), field: "notify", "sigev_notify \(notify)")
        try ImageValidation.require(signal.isValid || notify == TimerABI.SIGEV_NONE, field: "signal",
                                    "signal \(signal.rawValue)")
        try ImageValidation.require(deadline >= 0 && interval >= 0, field: "deadline", "a negative timer time")
        try ImageValidation.require(generation != 0 && overrunLast >= 0, field: "generation", "a timer generation of 0")
    }
}

/// ITIMER_VIRTUAL or ITIMER_PROF: an expiry on the process's CPU clock (user
/// time, or user and system time; 0: disarmed) and the reload.
struct CPUIntervalTimer: SavableStruct, Equatable, Sendable {
    static let savedTypeName = "sentry.CPUIntervalTimer"
    var expiry: Int64 = 0
    var interval: Int64 = 0

    init() {}

    func save(to sink: inout SaveSink) throws {
        try sink.save("expiry", expiry)
        try sink.save("interval", interval)
    }

    init(from source: inout LoadSource) throws {
        expiry = try source.load("expiry")
        interval = try source.load("interval")
        try ImageValidation.require(expiry >= 0 && interval >= 0, field: "expiry", "a negative CPU timer time")
    }
}

/// A process's timers that send signals, besides ITIMER_REAL: the CPU-time
/// itimers and the POSIX timers (by ID). Guarded by the group's `lock`.
///
/// Timers on the wall clocks fire from the kernel's timer thread
/// (KernelTimers). Timers on CPU clocks fire from the task itself: after
/// each stop, while `ThreadGroup.cpuTimersArmed` says one is armed, the task
/// compares them with the CPU time it just accounted (`checkCPUTimers`); the
/// timer thread kicks the process out of the application when one may be
/// due (`cpuKickAt`), as Linux's tick would look at them.
struct SignalTimers: SavableStruct, Equatable, Sendable {
    static let savedTypeName = "sentry.SignalTimers"
    var virtual = CPUIntervalTimer()
    var profiling = CPUIntervalTimer()
    var posix: [PosixTimer] = []
    /// Where the search for a free timer ID starts (IDs are handed out cyclically).
    var nextID: Int32 = 0

    /// The clocks timer_create accepts (the alarm clocks need an RTC: EOPNOTSUPP).
    static let timerClocks: Set<Int32> = [Time.realtime, Time.monotonic, Time.boottime, Time.tai,
                                          Time.processCPU, Time.threadCPU]
    /// One scheduler tick (HZ=250): what a CPU itimer adds to its first
    /// expiry, and how often the timer thread looks again at a busy process.
    static let tick: Int64 = Time.coarseResolution

    init() {}

    var hasArmedCPUTimer: Bool {
        virtual.expiry != 0 || profiling.expiry != 0
            || posix.contains { $0.countsCPU && $0.sendsSignal && $0.deadline != 0 && !$0.signalQueued }
    }

    func index(of id: Int32) -> Int? { posix.firstIndex { $0.id == id } }

    func save(to sink: inout SaveSink) throws {
        try sink.save("virtual", virtual)
        try sink.save("profiling", profiling)
        try sink.save("posix", posix)
        try sink.save("nextID", nextID)
    }

    init(from source: inout LoadSource) throws {
        virtual = try source.load("virtual")
        profiling = try source.load("profiling")
        posix = try source.load("posix")
        nextID = try source.load("nextID")
        try ImageValidation.require(nextID >= 0, field: "nextID", "a negative timer ID")
        try ImageValidation.require(Set(posix.map(\.id)).count == posix.count, field: "posix", "two timers share an ID")
    }
}

/// A timer's siginfo (SI_TIMER): si_tid and si_overrun in the union's first
/// word, si_value in the second, the arming's generation in si_sys_private
/// (the third) until the signal is taken.
extension SignalInfo {
    init(timer: PosixTimer) {
        self.init(signal: timer.signal, code: LinuxSignal.SI_TIMER)
        isTimerSignal = true
        fields[0] = UInt64(UInt32(bitPattern: timer.id))
        fields[1] = timer.value
        fields[2] = UInt64(timer.generation)
    }

    var timerID: Int32 { Int32(truncatingIfNeeded: fields[0]) }
    var timerGeneration: UInt32 { UInt32(truncatingIfNeeded: fields[2]) }

    /// What the thread gets: the overrun filled in, si_sys_private cleared.
    func deliveredTimerSignal(overrun: Int32) -> SignalInfo {
        var info = self
        info.fields[0] = UInt64(UInt32(bitPattern: timerID)) | UInt64(UInt32(bitPattern: overrun)) << 32
        info.fields[2] = 0
        return info
    }
}

// MARK: The process's side, under its lock

extension ThreadGroup {
    /// A signal a timer sends, to the process (`target` nil) or one thread.
    struct TimerSignal {
        var info: SignalInfo
        var target: Task?
    }

    /// The one test every stop makes: one relaxed load, no lock.
    var hasArmedCPUTimers: Bool { cpuTimersArmed.load(ordering: .relaxed) }

    /// The current value of a timer's clock, nil for the CPU clock of a thread that is gone.
    func clockValueLocked(_ clock: Int32, cpuTaskID: Int32, clocks: Clocks) -> Int64? {
        switch clock {
        case Time.realtime, Time.tai: return clocks.realtime()
        case Time.processCPU: return cpuTimesLocked().total
        case Time.threadCPU:
            guard let task = tasks.first(where: { $0.id == cpuTaskID }) else { return nil }
            return task.userTime.addingSaturating(task.systemTime)
        default: return clocks.monotonic()
        }
    }

    /// How many siginfos timers hold for RLIMIT_SIGPENDING: each timer holds
    /// one from timer_create to timer_delete (Linux preallocates it), which
    /// its queued signal uses rather than adding another.
    var timerSignalReservationsLocked: Int { signalTimers.posix.reduce(0) { $0 + ($1.signalQueued ? 0 : 1) } }

    /// A timer signal is being taken (dequeue_signal): drops it when its
    /// timer was deleted or rearmed since, else fills in the overrun, rearms
    /// a periodic timer past now and returns what the thread gets.
    func takeTimerSignalLocked(_ info: SignalInfo) -> SignalInfo? {
        guard info.isTimerSignal else { return info }
        guard let index = signalTimers.index(of: info.timerID), let clocks = kernel?.clocks else { return nil }
        var timer = signalTimers.posix[index]
        guard timer.generation == info.timerGeneration, timer.signalQueued else { return nil }
        timer.signalQueued = false
        var overrun: Int64 = 0
        if timer.interval > 0, timer.deadline != 0,
           let now = clockValueLocked(timer.clock, cpuTaskID: timer.cpuTaskID, clocks: clocks) {
            overrun = forward(&timer, past: now) - 1
        }
        timer.overrunLast = Int32(clamping: overrun)
        signalTimers.posix[index] = timer
        if timer.countsCPU && timer.deadline != 0 { armCPUKickLocked(clocks: clocks) }
        return info.deliveredTimerSignal(overrun: timer.overrunLast)
    }

    /// Moves a periodic timer's deadline past `now` by whole periods (hrtimer_forward); returns how many.
    private func forward(_ timer: inout PosixTimer, past now: Int64) -> Int64 {
        guard now >= timer.deadline else { return 0 }
        let periods = (now - timer.deadline) / timer.interval + 1
        let (step, overflow) = periods.multipliedReportingOverflow(by: timer.interval)
        timer.deadline = overflow ? 0 : max(timer.deadline.addingSaturating(step), 1)
        return periods
    }

    /// The timer's remaining time and period as timer_gettime shows them
    /// (common_timer_get): a periodic timer whose signal waits, or that
    /// notifies nobody, is shown forwarded past now; an expired one-shot
    /// SIGEV_NONE timer shows 0, any other expired one 1 ns.
    func timerSettingLocked(_ timer: PosixTimer, clocks: Clocks) -> (remaining: Int64, interval: Int64) {
        guard timer.deadline != 0,
              let now = clockValueLocked(timer.clock, cpuTaskID: timer.cpuTaskID, clocks: clocks) else {
            return (0, timer.interval)
        }
        var shown = timer
        if timer.interval > 0, timer.signalQueued || !timer.sendsSignal { _ = forward(&shown, past: now) }
        let remaining = shown.deadline - now
        if remaining <= 0 { return (timer.sendsSignal ? 1 : 0, timer.interval) }
        return (remaining, timer.interval)
    }

    // MARK: Firing

    /// For the timer thread: fires the wall-clock timers due at `monotonic`
    /// (and `realtime`), and says which tasks to kick for their CPU timers
    /// and when to look again (a virtual CLOCK_MONOTONIC time). An exiting
    /// process's timers fire no more.
    func expireWallTimers(monotonic: Int64, realtime: Int64)
        -> (signals: [TimerSignal], kicks: [Task], next: Int64?) {
        lock.withLock { _ in
            guard exitReason == nil else { return ([], [], nil) }
            var signals: [TimerSignal] = []
            var next: Int64?
            for index in signalTimers.posix.indices {
                let timer = signalTimers.posix[index]
                guard !timer.countsCPU, timer.sendsSignal, timer.deadline != 0, !timer.signalQueued else { continue }
                let isRealtime = timer.clock == Time.realtime || timer.clock == Time.tai
                let now = isRealtime ? realtime : monotonic
                guard now >= timer.deadline else {
                    let due = isRealtime ? monotonic.addingSaturating(timer.deadline - realtime) : timer.deadline
                    next = min(next ?? due, due)
                    continue
                }
                if let signal = fireLocked(index, now: now) { signals.append(signal) }
            }
            var kicks: [Task] = []
            if cpuTimersArmed.load(ordering: .relaxed) {
                if monotonic >= cpuKickAt {
                    kicks = tasks
                    cpuKickAt = monotonic.addingSaturating(SignalTimers.tick)
                }
                next = min(next ?? cpuKickAt, cpuKickAt)
            }
            return (signals, kicks, next)
        }
    }

    /// The timer at `index` expires at `now`: its signal, the timer marked
    /// queued; a one-shot timer disarms. A SIGEV_THREAD_ID timer whose
    /// thread is gone sends nothing and goes on to its next period.
    private func fireLocked(_ index: Int, now: Int64) -> TimerSignal? {
        var timer = signalTimers.posix[index]
        var target: Task?
        if timer.notify == TimerABI.SIGEV_THREAD_ID {
            target = tasks.first { $0.id == timer.targetTaskID }
        }
        if timer.notify == TimerABI.SIGEV_THREAD_ID && target == nil {
            if timer.interval > 0 { _ = forward(&timer, past: now) } else { timer.deadline = 0 }
        } else {
            timer.signalQueued = true
            if timer.interval == 0 { timer.deadline = 0 }
        }
        signalTimers.posix[index] = timer
        return timer.signalQueued ? TimerSignal(info: SignalInfo(timer: timer), target: target) : nil
    }

    /// Sends a timer's signal. One that was not queued (ignored, its thread
    /// gone, the process exiting) leaves the timer free to fire again at its
    /// next period instead of waiting for a taking that never comes.
    func sendTimerSignal(_ signal: TimerSignal, from sender: Task? = nil) {
        try? send(signal.info, to: signal.target, from: sender)
        guard signal.info.isTimerSignal, let clocks = kernel?.clocks else { return }
        lock.withLock { _ in
            let info = signal.info
            let queued = (signal.target?.pendingSignals ?? sharedPendingSignals).entries.contains {
                $0.isTimerSignal && $0.timerID == info.timerID && $0.timerGeneration == info.timerGeneration
            }
            guard !queued, let index = signalTimers.index(of: info.timerID) else { return }
            var timer = signalTimers.posix[index]
            guard timer.generation == info.timerGeneration, timer.signalQueued else { return }
            timer.signalQueued = false
            if timer.interval > 0, timer.deadline != 0,
               let now = clockValueLocked(timer.clock, cpuTaskID: timer.cpuTaskID, clocks: clocks) {
                _ = forward(&timer, past: now)
            }
            signalTimers.posix[index] = timer
        }
    }

    /// The CPU-time timers due now (check_process_timers): SIGVTALRM and
    /// SIGPROF from the itimers, which reload by one period, and the
    /// signals of POSIX timers on CPU clocks. Sets when the timer thread
    /// should kick the process next: when the nearest one could be due
    /// (and whether that is earlier than the timer thread knows).
    func expireCPUTimersLocked(clocks: Clocks) -> (signals: [TimerSignal], wake: Bool) {
        let times = cpuTimesLocked()
        var signals: [TimerSignal] = []
        if Self.expire(&signalTimers.virtual, at: times.user) {
            signals.append(TimerSignal(info: SignalInfo(signal: .virtualAlarm, code: LinuxSignal.SI_KERNEL)))
        }
        if Self.expire(&signalTimers.profiling, at: times.total) {
            signals.append(TimerSignal(info: SignalInfo(signal: .profilingAlarm, code: LinuxSignal.SI_KERNEL)))
        }
        for index in signalTimers.posix.indices {
            let timer = signalTimers.posix[index]
            guard timer.countsCPU, timer.sendsSignal, timer.deadline != 0, !timer.signalQueued,
                  let now = clockValueLocked(timer.clock, cpuTaskID: timer.cpuTaskID, clocks: clocks),
                  now >= timer.deadline else { continue }
            if let signal = fireLocked(index, now: now) { signals.append(signal) }
        }
        return (signals, armCPUKickLocked(clocks: clocks))
    }

    private static func expire(_ timer: inout CPUIntervalTimer, at now: Int64) -> Bool {
        guard timer.expiry != 0, now >= timer.expiry else { return false }
        timer.expiry = timer.interval > 0 ? timer.expiry.addingSaturating(timer.interval) : 0
        return true
    }

    /// Sets `cpuTimersArmed` and `cpuKickAt`: the nearest CPU deadline cannot
    /// come before that much wall time has passed with every thread running.
    /// Returns whether the timer thread must look again: the timers were
    /// just armed, or the kick came more than a tick earlier (a check at
    /// every stop moves it by the jitter of the accounting, and waking the
    /// thread each time doubled a trap's cost; a tick late is Linux's own
    /// granularity for CPU timers).
    @discardableResult
    func armCPUKickLocked(clocks: Clocks) -> Bool {
        guard signalTimers.hasArmedCPUTimer else {
            cpuTimersArmed.store(false, ordering: .relaxed)
            return false
        }
        let times = cpuTimesLocked()
        var nearest = Int64.max
        if signalTimers.virtual.expiry != 0 { nearest = min(nearest, signalTimers.virtual.expiry - times.user) }
        if signalTimers.profiling.expiry != 0 { nearest = min(nearest, signalTimers.profiling.expiry - times.total) }
        for timer in signalTimers.posix where timer.countsCPU && timer.sendsSignal && timer.deadline != 0 && !timer.signalQueued {
            if let now = clockValueLocked(timer.clock, cpuTaskID: timer.cpuTaskID, clocks: clocks) {
                nearest = min(nearest, timer.deadline - now)
            }
        }
        let kick = clocks.monotonic().addingSaturating(max(0, nearest) / Int64(max(1, tasks.count)))
        let wasArmed = cpuTimersArmed.load(ordering: .relaxed)
        cpuTimersArmed.store(true, ordering: .relaxed)
        let earlier = !wasArmed || kick < cpuKickAt.addingSaturating(-SignalTimers.tick)
        cpuKickAt = kick
        return earlier
    }

    /// exec and exit delete the POSIX timers (exit_itimers); their queued signals are dropped when taken.
    func deletePosixTimers() {
        guard let clocks = kernel?.clocks else { return }
        lock.withLock { _ in
            signalTimers.posix.removeAll()
            armCPUKickLocked(clocks: clocks)
        }
    }
}

extension Task {
    /// After a stop, while a CPU timer is armed: fires what the CPU time
    /// accounted so far makes due; the signals are delivered on this return
    /// to the application.
    func checkCPUTimers() {
        guard let group = threadGroup, let kernel else { return }
        let (signals, wake) = group.lock.withLock { _ in group.expireCPUTimersLocked(clocks: kernel.clocks) }
        for signal in signals { group.sendTimerSignal(signal, from: self) }
        if wake { kernel.timers.rearm(kernel) }
    }
}

extension Task {
    /// A timer's signal was taken and may have rearmed its timer: the timer
    /// thread looks at the deadlines again (outside the group's lock, which
    /// comes after the timer thread's).
    func timerSignalTaken(_ info: SignalInfo) {
        guard info.isTimerSignal, let kernel else { return }
        kernel.timers.rearm(kernel)
    }
}

// MARK: What the syscalls do

extension ThreadGroup {
    /// setitimer(ITIMER_VIRTUAL or ITIMER_PROF) (set_cpu_itimer): arms
    /// `value` ns of CPU time from now, plus a tick as Linux adds, with the
    /// reload `interval`; returns the old setting as getitimer shows it.
    func setCPUIntervalTimer(profiling: Bool, value: Int64, interval: Int64,
                             clocks: Clocks) -> (remaining: Int64, interval: Int64) {
        lock.withLock { _ in
            let old = cpuIntervalTimerLocked(profiling: profiling)
            let times = cpuTimesLocked()
            var timer = CPUIntervalTimer()
            if value > 0 {
                timer.expiry = max((profiling ? times.total : times.user).addingSaturating(value)
                    .addingSaturating(SignalTimers.tick), 1)
                timer.interval = interval
            }
            if profiling { signalTimers.profiling = timer } else { signalTimers.virtual = timer }
            armCPUKickLocked(clocks: clocks)
            return old
        }
    }

    /// getitimer(ITIMER_VIRTUAL or ITIMER_PROF) (get_cpu_itimer): a timer about to fire shows a tick.
    func cpuIntervalTimer(profiling: Bool) -> (remaining: Int64, interval: Int64) {
        lock.withLock { _ in cpuIntervalTimerLocked(profiling: profiling) }
    }

    private func cpuIntervalTimerLocked(profiling: Bool) -> (remaining: Int64, interval: Int64) {
        let timer = profiling ? signalTimers.profiling : signalTimers.virtual
        guard timer.expiry != 0 else { return (0, timer.interval) }
        let times = cpuTimesLocked()
        let now = profiling ? times.total : times.user
        return (timer.expiry <= now ? SignalTimers.tick : timer.expiry - now, timer.interval)
    }

    /// timer_create once the sigevent is checked: EAGAIN when RLIMIT_SIGPENDING
    /// has no siginfo left to reserve for it. Without a sigevent the timer
    /// sends SIGALRM with its own ID as si_value. Returns the new ID.
    func createTimer(clock: Int32, event: RawSignalEvent?, creator: Task) throws(SyscallError) -> Int32 {
        try lock.withLock { _ throws(SyscallError) -> Int32 in
            guard UInt64(queuedSignalInfoCountLocked) < storedLimits[.sigpending].soft else { throw .eagain }
            let used = Set(signalTimers.posix.map(\.id))
            var id = signalTimers.nextID
            while used.contains(id) { id = id == TimerABI.maximumTimerID ? 0 : id + 1 }
            signalTimers.nextID = id == TimerABI.maximumTimerID ? 0 : id + 1
            let notify = event?.notify ?? TimerABI.SIGEV_SIGNAL
            let signal = event.map { Signal(rawValue: $0.signal) } ?? .alarm
            let value = event?.value ?? UInt64(UInt32(bitPattern: id))
            let target = notify == TimerABI.SIGEV_THREAD_ID ? (event?.threadID ?? 0) : 0
            signalTimers.posix.append(PosixTimer(id: id, clock: clock, notify: notify, signal: signal,
                                                 targetTaskID: target, cpuTaskID: creator.id, value: value))
            return id
        }
    }

    /// Whether `id` is a thread of this process (SIGEV_THREAD_ID's check).
    func hasMember(_ id: Int32) -> Bool { lock.withLock { _ in tasks.contains { $0.id == id } } }

    /// timer_settime (common_timer_set): EINVAL for an unknown timer. A zero
    /// value disarms; a relative one counts from now on the timer's clock.
    /// A signal of the previous arming still queued is dropped when taken.
    /// Returns the old setting.
    func setTimer(_ id: Int32, absolute: Bool, value: Int64, interval: Int64,
                  clocks: Clocks) throws(SyscallError) -> (remaining: Int64, interval: Int64) {
        try lock.withLock { _ throws(SyscallError) -> (remaining: Int64, interval: Int64) in
            guard let index = signalTimers.index(of: id) else { throw .einval }
            var timer = signalTimers.posix[index]
            let old = timerSettingLocked(timer, clocks: clocks)
            timer.generation = timer.generation == .max ? 1 : timer.generation + 1
            timer.signalQueued = false
            timer.overrunLast = 0
            timer.deadline = 0
            timer.interval = 0
            if value > 0, let now = clockValueLocked(timer.clock, cpuTaskID: timer.cpuTaskID, clocks: clocks) {
                timer.deadline = max(absolute ? value : now.addingSaturating(value), 1)
                timer.interval = interval
            }
            signalTimers.posix[index] = timer
            armCPUKickLocked(clocks: clocks)
            return old
        }
    }

    /// timer_gettime: EINVAL for an unknown timer.
    func timerSetting(_ id: Int32, clocks: Clocks) throws(SyscallError) -> (remaining: Int64, interval: Int64) {
        try lock.withLock { _ throws(SyscallError) -> (remaining: Int64, interval: Int64) in
            guard let index = signalTimers.index(of: id) else { throw .einval }
            return timerSettingLocked(signalTimers.posix[index], clocks: clocks)
        }
    }

    /// timer_getoverrun: EINVAL for an unknown timer.
    func timerOverrun(_ id: Int32) throws(SyscallError) -> Int32 {
        try lock.withLock { _ throws(SyscallError) -> Int32 in
            guard let index = signalTimers.index(of: id) else { throw .einval }
            return signalTimers.posix[index].overrunLast
        }
    }

    /// timer_delete: EINVAL for an unknown timer; a signal of it still queued is dropped when taken.
    func deleteTimer(_ id: Int32, clocks: Clocks) throws(SyscallError) {
        try lock.withLock { _ throws(SyscallError) in
            guard let index = signalTimers.index(of: id) else { throw .einval }
            signalTimers.posix.remove(at: index)
            armCPUKickLocked(clocks: clocks)
        }
    }
}

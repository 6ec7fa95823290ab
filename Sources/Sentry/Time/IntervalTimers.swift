import Glibc
import State

/// The host thread behind ITIMER_REAL (Linux's hrtimer for it_real_fn) and
/// the POSIX timers on wall clocks (SignalTimers.swift): it sleeps until the
/// earliest armed deadline on the virtual CLOCK_MONOTONIC, queues the
/// signals of what is due, kicks processes whose CPU-time timers may be due
/// out of the application, and ends when nothing is armed.
/// A checkpoint holds it (`hold`) before pausing the tasks, so nothing fires
/// into a paused kernel; it fires what came due right after `release`.
/// Host-only, never saved: a restored kernel starts it again (`Kernel.startTimers`).
final class KernelTimers: @unchecked Sendable {
    // `running`, `held` and `files` are guarded by `condition`'s lock. Lock
    // order: this lock before a thread group's and a timerfd's
    // FileDescription.lock (a firing sends or counts under it), and so
    // before the WaitQueues they notify; callers take it holding neither.
    private let condition = HostCondition()
    private var running = false
    private var held = false
    /// The armed timerfds (TimerFile.swift), dropped once disarmed or closed.
    private var files: [ObjectIdentifier: TimerFile] = [:]

    /// A timerfd was armed (or restored armed): the thread looks at it.
    func add(_ file: TimerFile) {
        condition.withLock { files[ObjectIdentifier(file)] = file }
    }

    /// A timerfd was closed.
    func remove(_ file: TimerFile) {
        _ = condition.withLock { files.removeValue(forKey: ObjectIdentifier(file)) }
    }
    /// Set once, when the kernel is thrown away (Kernel.discard): the thread ends and never starts again.
    private var stopped = false

    /// A deadline changed: wakes the thread to look again, starting it if needed.
    func rearm(_ kernel: Kernel) {
        condition.withLock {
            condition.broadcast()
            guard !running, !stopped else { return }
            do {
                try HostThread.start(detached: true) { [weak kernel] in
                    guard let kernel else { return }
                    kernel.timers.run(kernel)
                }
                running = true
            } catch {
                kernel.logger.error("interval timers cannot fire: \(error)")
            }
        }
    }

    /// Stops firing until `release` (a checkpoint's pause). When it returns no firing is under way.
    func hold() {
        condition.withLock { held = true }
    }

    func release() {
        condition.withLock {
            held = false
            condition.broadcast()
        }
    }

    /// Ends the thread for good (it holds the kernel).
    func stop() {
        condition.withLock {
            stopped = true
            condition.broadcast()
        }
    }

    private func run(_ kernel: Kernel) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if stopped {
                running = false
                return
            }
            if held {
                condition.wait()
                continue
            }
            let now = kernel.clocks.monotonic()
            let realtime = kernel.clocks.realtime()
            var earliest: Int64?
            for group in kernel.pidNamespace.allThreadGroups {
                let (fired, next) = group.expireRealTimer(now: now)
                if fired {
                    try? group.send(SignalInfo(signal: .alarm, code: LinuxSignal.SI_KERNEL))
                }
                if let next { earliest = min(earliest ?? next, next) }
                let due = group.expireWallTimers(monotonic: now, realtime: realtime)
                for signal in due.signals { group.sendTimerSignal(signal) }
                for task in due.kicks { _ = task.kickOutOfApplication() }
                if let next = due.next { earliest = min(earliest ?? next, next) }
            }
            for (key, file) in files {
                guard let next = file.expire(monotonic: now, realtime: realtime) else {
                    files.removeValue(forKey: key)
                    continue
                }
                earliest = min(earliest ?? next, next)
            }
            guard let earliest else {
                running = false
                return
            }
            _ = condition.wait(untilHostMonotonic: earliest.addingSaturating(-kernel.clocks.monotonicOffset))
        }
    }
}

/// ITIMER_REAL of a thread group: the deadline on the virtual monotonic clock
/// (0: disarmed) and the period, guarded by the group's `lock`.
extension ThreadGroup {
    /// setitimer(ITIMER_REAL): arms `value` ns from `now` (0 disarms) with
    /// `interval`; returns the old remaining time and interval.
    func setRealTimer(value: Int64, interval: Int64, now: Int64) -> (remaining: Int64, interval: Int64) {
        lock.withLock { _ in
            let old = realTimerLocked(now: now)
            realTimerDeadline = value > 0 ? max(now.addingSaturating(value), 1) : 0
            realTimerInterval = value > 0 ? interval : 0
            return old
        }
    }

    /// getitimer(ITIMER_REAL): the time left and the interval.
    func realTimer(now: Int64) -> (remaining: Int64, interval: Int64) {
        lock.withLock { _ in realTimerLocked(now: now) }
    }

    /// An armed timer never shows 0 left (itimer_get_remaining: 1 µs).
    private func realTimerLocked(now: Int64) -> (remaining: Int64, interval: Int64) {
        guard realTimerDeadline != 0 else { return (0, realTimerInterval) }
        return (max(realTimerDeadline - now, IntervalTimerABI.nanosecondsPerMicrosecond), realTimerInterval)
    }

    /// Whether the timer is due at `now` (then it moves to the next period
    /// after `now`, overruns dropped as hrtimer_forward, or disarms), and its
    /// deadline afterwards. An exiting group's timer is dropped.
    func expireRealTimer(now: Int64) -> (fired: Bool, next: Int64?) {
        lock.withLock { _ in
            guard realTimerDeadline != 0 else { return (false, nil) }
            guard exitReason == nil else {
                realTimerDeadline = 0
                return (false, nil)
            }
            guard now >= realTimerDeadline else { return (false, realTimerDeadline) }
            if realTimerInterval > 0 {
                let periods = (now - realTimerDeadline) / realTimerInterval + 1
                let (step, overflow) = periods.multipliedReportingOverflow(by: realTimerInterval)
                realTimerDeadline = overflow ? 0 : realTimerDeadline.addingSaturating(step)
            } else {
                realTimerDeadline = 0
            }
            return (true, realTimerDeadline == 0 ? nil : realTimerDeadline)
        }
    }
}

extension Kernel {
    /// Starts the interval-timer thread of a restored kernel, whose groups may have armed timers.
    public func startTimers() {
        timers.rearm(self)
    }
}

/// setitimer's `which` and units (include/uapi/linux/time.h).
enum IntervalTimerABI {
    static let ITIMER_REAL: Int32 = 0
    static let ITIMER_VIRTUAL: Int32 = 1
    static let ITIMER_PROF: Int32 = 2
    static let nanosecondsPerMicrosecond: Int64 = 1000
    static let microsecondsPerSecond: Int64 = 1_000_000
}

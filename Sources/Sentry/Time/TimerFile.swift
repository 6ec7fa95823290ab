import State

/// A timerfd (fs/timerfd.c): a timer on a wall clock whose expirations are
/// counted in the file and read as one 8-byte number; readable while the
/// count is not 0. The kernel's timer thread fires it (KernelTimers keeps the
/// armed ones); the deadline is on the clock, so CLOCK_MONOTONIC's
/// continues on the virtual clock across a checkpoint.
public final class TimerFile: FileDescription, @unchecked Sendable { // the timer fields are guarded by FileDescription.lock
    override public class var savedTypeName: String { "time.TimerFile" }
    override public class var notSaved: Set<String> { super.notSaved.union(["readers"]) }

    public private(set) var kernel: Kernel?
    var clock: Int32 = Time.monotonic
    /// On `clock`, 0: disarmed.
    var deadline: Int64 = 0
    var interval: Int64 = 0
    /// Expirations not yet read.
    var ticks: UInt64 = 0
    /// Host-only: readers, pollers and epoll items waiting for an expiration; they register again after a load.
    let readers = WaitQueue()

    public required init() { super.init() }

    init(kernel: Kernel, clock: Int32, flags: UInt32) {
        self.kernel = kernel
        self.clock = clock
        super.init(location: nil, flags: LinuxFile.readWrite | flags)
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let state = lock.withLock { _ in (deadline, interval, ticks) }
        try sink.save("kernel", kernel)
        try sink.save("clock", clock)
        try sink.save("deadline", state.0)
        try sink.save("interval", state.1)
        try sink.save("ticks", state.2)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        kernel = try source.load("kernel")
        clock = try source.load("clock")
        deadline = try source.load("deadline")
        interval = try source.load("interval")
        ticks = try source.load("ticks")
        try ImageValidation.require(TimerFile.clocks.contains(clock), field: "clock", "clock \(clock) has no timerfd")
        try ImageValidation.require(deadline >= 0 && interval >= 0, field: "deadline", "a negative timer time")
    }

    /// An armed timer goes back to the restored kernel's timer thread.
    override public func afterLoad() throws {
        try super.afterLoad()
        if deadline != 0, let kernel { kernel.timers.add(self) }
    }

    /// The clocks timerfd_create accepts (the alarm ones are their base clocks here).
    static let clocks: Set<Int32> = [Time.realtime, Time.monotonic, Time.boottime, Time.realtimeAlarm, Time.boottimeAlarm]

    private var isRealtime: Bool { clock == Time.realtime || clock == Time.realtimeAlarm }

    private func now(_ clocks: Clocks) -> Int64 { isRealtime ? clocks.realtime() : clocks.monotonic() }

    // MARK: Setting

    /// timerfd_settime: the old setting; the count of unread expirations is reset.
    func set(value: Int64, interval newInterval: Int64, absolute: Bool) -> (remaining: Int64, interval: Int64) {
        guard let kernel else { return (0, 0) }
        let old = lock.withLock { _ -> (remaining: Int64, interval: Int64) in
            let old = settingLocked(kernel.clocks)
            ticks = 0
            deadline = value > 0 ? max(absolute ? value : now(kernel.clocks).addingSaturating(value), 1) : 0
            interval = value > 0 ? newInterval : 0
            return old
        }
        kernel.timers.add(self)
        kernel.timers.rearm(kernel)
        return old
    }

    /// timerfd_gettime.
    var setting: (remaining: Int64, interval: Int64) {
        guard let kernel else { return (0, 0) }
        return lock.withLock { _ in settingLocked(kernel.clocks) }
    }

    private func settingLocked(_ clocks: Clocks) -> (remaining: Int64, interval: Int64) {
        guard deadline != 0 else { return (0, interval) }
        // An expiry the thread has not counted yet shows 0 (timerfd_get_remaining).
        return (max(0, deadline - now(clocks)), interval)
    }

    /// For the timer thread: counts the expirations up to now, wakes readers;
    /// returns the next deadline on the virtual CLOCK_MONOTONIC, nil once disarmed.
    func expire(monotonic: Int64, realtime: Int64) -> Int64? {
        let (fired, next) = lock.withLock { _ -> (Bool, Int64?) in
            guard deadline != 0 else { return (false, nil) }
            let current = isRealtime ? realtime : monotonic
            if current >= deadline {
                if interval > 0 {
                    let periods = (current - deadline) / interval + 1
                    let (step, overflow) = periods.multipliedReportingOverflow(by: interval)
                    deadline = overflow ? 0 : max(deadline.addingSaturating(step), 1)
                    ticks = ticks.addingReportingOverflow(UInt64(periods)).overflow ? .max : ticks + UInt64(periods)
                } else {
                    deadline = 0
                    ticks = ticks == .max ? .max : ticks + 1
                }
                if deadline == 0 { return (true, nil) }
                return (true, isRealtime ? monotonic.addingSaturating(deadline - realtime) : deadline)
            }
            return (false, isRealtime ? monotonic.addingSaturating(deadline - realtime) : deadline)
        }
        if fired { readers.notify(.readable) }
        return next
    }

    override public func released() {
        kernel?.timers.remove(self)
    }

    // MARK: Data

    override public var isSeekable: Bool { false }

    /// timerfd_read: EINVAL below 8 bytes; the count of expirations, waited
    /// for unless non-blocking (EAGAIN), then 0 again.
    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        guard count >= MemoryLayout<UInt64>.size else { throw .einval }
        guard let waiter, !isNonBlocking else {
            guard let taken = takeTicks() else { throw .eagain }
            return withUnsafeBytes(of: taken) { Array($0) }
        }
        let taken = try waiter.wait(on: readers, for: .readable) { takeTicks() }
        return withUnsafeBytes(of: taken) { Array($0) }
    }

    private func takeTicks() -> UInt64? {
        lock.withLock { _ -> UInt64? in
            guard ticks > 0 else { return nil }
            defer { ticks = 0 }
            return ticks
        }
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        throw .einval
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .espipe }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        var attributes = FileAttributes()
        attributes.mode = SignalFile.anonymousInodeMode
        return attributes
    }

    override public func readiness(for mask: PollEvents) -> PollEvents {
        lock.withLock { _ in ticks } > 0 ? PollEvents.readable.intersection(mask) : []
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { readers.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { readers.unregister(entry) }
}

import Glibc
import Synchronization

/// How a task sleeps in a blocking file operation (read on an empty pipe, read
/// of the container's stdin) so that another thread can wake it: a state change
/// calls `notify()`, and a signal or a checkpoint calls `interrupt()`, which
/// makes the blocked call throw ERESTARTSYS so the task leaves the Sentry and
/// the syscall restarts later. One waiter per task, reused by every wait.
///
/// Sleeps in poll(2) on a self-pipe so a wait can also include a host FD, on
/// a real thread, never Swift's cooperative pool.
public final class Waiter: @unchecked Sendable { // `flags` is guarded by its Mutex; the FDs are immutable
    private struct Flags {
        var pending = false
        var interrupted = false
    }

    /// Innermost: taken under a WaitQueue's lock (see VFSLock).
    private let flags = Mutex(Flags())
    /// The self-pipe's read end, polled; -1 if it could not be made.
    private let eventFD: Int32
    private let kickFD: Int32

    public init() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            for fd in ends {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        }
        eventFD = ends[0]
        kickFD = ends[1]
    }

    deinit {
        if eventFD >= 0 { close(eventFD) }
        if kickFD >= 0 { close(kickFD) }
    }

    /// Wakes the waiter if it sleeps, or makes its next wait return at once.
    public func notify() {
        flags.withLock { $0.pending = true }
        kick()
    }

    /// Makes the current and every later wait throw ERESTARTSYS until
    /// `clearInterrupt()`: a task being stopped for a signal or a checkpoint
    /// must not block again on its way out.
    public func interrupt() {
        flags.withLock { $0.interrupted = true }
        kick()
    }

    public var isInterrupted: Bool { flags.withLock { $0.interrupted } }

    /// Called by the task once it has handled what interrupted it.
    public func clearInterrupt() {
        flags.withLock { $0.interrupted = false }
    }

    /// Forgets a notification that arrived before the caller registered interest.
    public func reset() {
        flags.withLock { $0.pending = false }
    }

    /// Sleeps until `notify()` (returns true), `interrupt()` (throws
    /// ERESTARTSYS), one of `hostFDs` has one of its events ready (returns
    /// true) or the host's CLOCK_MONOTONIC reaches `deadline` in ns (returns
    /// false). poll(2) of many files sleeps here once, on every queue it
    /// joined (they notify) and every host FD behind them (polled together).
    @discardableResult
    public func wait(hostFDs: [pollfd] = [], untilHostMonotonic deadline: Int64? = nil) throws(SyscallError) -> Bool {
        while true {
            let (wasPending, wasInterrupted) = flags.withLock { flags -> (Bool, Bool) in
                let pending = flags.pending
                flags.pending = false
                return (pending, flags.interrupted)
            }
            if wasInterrupted { throw .erestartsys }
            if wasPending { return true }
            var fds: [pollfd] = []
            if eventFD >= 0 { fds.append(pollfd(fd: eventFD, events: Int16(POLLIN), revents: 0)) }
            fds += hostFDs
            var timeout = Self.milliseconds(until: deadline)
            if timeout == 0 { return false }
            // Without a self-pipe (FD exhaustion at creation) the flags are polled every few milliseconds.
            if eventFD < 0 { timeout = timeout < 0 ? 5 : min(5, timeout) }
            let start = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            let result = poll(&fds, nfds_t(fds.count), timeout)
            BlockedTime.addSince(start)
            if result < 0, errno != EINTR { throw .eintr }
            for entry in fds where entry.revents != 0 {
                if entry.fd == eventFD { drain() } else { return true }
            }
        }
    }

    /// Host poll(2)'s timeout for `deadline`: -1 for none, rounded up so a
    /// wait never ends before its deadline.
    private static func milliseconds(until deadline: Int64?) -> Int32 {
        guard let deadline else { return -1 }
        let remaining = deadline.subtractingReportingOverflow(Clocks.hostNanoseconds(CLOCK_MONOTONIC))
        if remaining.overflow { return deadline > 0 ? Int32.max : 0 }
        guard remaining.partialValue > 0 else { return 0 }
        return Int32(clamping: remaining.partialValue / 1_000_000 + (remaining.partialValue % 1_000_000 == 0 ? 0 : 1))
    }

    private func kick() {
        guard kickFD >= 0 else { return }
        var one: UInt8 = 1
        _ = write(kickFD, &one, 1)
    }

    private func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(eventFD, &bytes, bytes.count) > 0 {}
    }
}

extension Waiter {
    /// Sleeps on `queue` until `take` gives a value (signalfd, timerfd: the
    /// queue is notified when one may have come); an interrupt throws ERESTARTSYS.
    func wait<T>(on queue: WaitQueue, for take: () -> T?) throws(SyscallError) -> T {
        queue.add(self)
        defer { queue.remove(self) }
        while true {
            reset()
            if let value = take() { return value }
            try wait()
        }
    }
}

/// Something a waiter listens to for readiness: a Sentry object's queue (it
/// notifies) or a host FD (polled with the waiter's own self-pipe).
public enum WaitSource {
    case queue(WaitQueue)
    case hostFD(Int32, events: PollEvents)
}

/// The sources one wait listens to at once (poll(2) over many files): the
/// waiter joins each queue; the host FDs are polled by `wait`. `leave()`
/// undoes the joins and must follow every `add`.
public struct WaitSet {
    public let waiter: Waiter
    private var queues: [WaitQueue] = []
    private var hostFDs: [pollfd] = []

    public init(waiter: Waiter) {
        self.waiter = waiter
    }

    public mutating func add(_ sources: [WaitSource]) {
        for source in sources {
            switch source {
            case .queue(let queue):
                queue.add(waiter)
                queues.append(queue)
            case .hostFD(let fd, let events):
                hostFDs.append(pollfd(fd: fd, events: Int16(truncatingIfNeeded: events.rawValue), revents: 0))
            }
        }
    }

    /// `Waiter.wait` on every source; true if woken, false at the deadline.
    public func wait(untilHostMonotonic deadline: Int64?) throws(SyscallError) -> Bool {
        try waiter.wait(hostFDs: hostFDs, untilHostMonotonic: deadline)
    }

    public mutating func leave() {
        for queue in queues { queue.remove(waiter) }
        queues.removeAll()
        hostFDs.removeAll()
    }
}

/// The waiters interested in one object's state (a pipe's readers, its
/// writers). Never saved: at a checkpoint every task has left its wait.
public final class WaitQueue: @unchecked Sendable { // `waiters` is guarded by its Mutex
    /// Taken under a pipe's lock; takes only a Waiter's (see VFSLock).
    private let waiters = Mutex<[ObjectIdentifier: Waiter]>([:])

    public init() {}

    public func add(_ waiter: Waiter) {
        waiters.withLock { $0[ObjectIdentifier(waiter)] = waiter }
    }

    public func remove(_ waiter: Waiter) {
        _ = waiters.withLock { $0.removeValue(forKey: ObjectIdentifier(waiter)) }
    }

    public func notifyAll() {
        let current = waiters.withLock { Array($0.values) }
        for waiter in current { waiter.notify() }
    }
}

/// poll(2)'s event bits (include/uapi/asm-generic/poll.h, as x86_64 uses
/// them unchanged): what a file reports ready in `FileDescription.readiness`.
/// 32 bits wide, as epoll's events are.
public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let input = PollEvents(rawValue: 0x001)
    public static let priority = PollEvents(rawValue: 0x002)
    public static let output = PollEvents(rawValue: 0x004)
    public static let error = PollEvents(rawValue: 0x008)
    public static let hangUp = PollEvents(rawValue: 0x010)
    public static let invalid = PollEvents(rawValue: 0x020)
    public static let readNormal = PollEvents(rawValue: 0x040)
    public static let readBand = PollEvents(rawValue: 0x080)
    public static let writeNormal = PollEvents(rawValue: 0x100)
    public static let writeBand = PollEvents(rawValue: 0x200)

    /// What a file without a poll operation reports (DEFAULT_POLLMASK): it
    /// never blocks, so it is always readable and writable.
    public static let alwaysReady: PollEvents = [.input, .output, .readNormal, .writeNormal]
    public static let readable: PollEvents = [.input, .readNormal]
    public static let writable: PollEvents = [.output, .writeNormal]
    /// Reported whether asked for or not (poll's `filter` always includes them).
    public static let unmaskable: PollEvents = [.error, .hangUp]
}

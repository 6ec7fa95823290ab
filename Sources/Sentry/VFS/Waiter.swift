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

    /// Sleeps until `notify()` (returns true), `interrupt()` (throws ERESTARTSYS)
    /// or the timeout (returns false). With `hostFD`, also returns true when
    /// that host file has one of `events` (POLLIN, POLLOUT) ready.
    @discardableResult
    public func wait(hostFD: Int32? = nil, events: Int16 = Int16(POLLIN),
                     timeoutMilliseconds: Int32 = -1) throws(SyscallError) -> Bool {
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
            if let hostFD { fds.append(pollfd(fd: hostFD, events: events, revents: 0)) }
            // Without an eventfd (FD exhaustion at creation) the flags are polled every few milliseconds.
            let timeout = eventFD >= 0 ? timeoutMilliseconds
                : (timeoutMilliseconds < 0 ? 5 : min(5, timeoutMilliseconds))
            let result = poll(&fds, nfds_t(fds.count), timeout)
            if result < 0, errno != EINTR { throw .eintr }
            if result == 0, eventFD >= 0, timeoutMilliseconds >= 0 { return false }
            for entry in fds where entry.revents != 0 {
                if entry.fd == eventFD { drain() } else { return true }
            }
        }
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

import Glibc
import State

/// Where a task waits inside the Sentry (nanosleep, and later futexes and
/// pipes): a host condition variable that `interrupt()` wakes, so exit and
/// checkpoint can pull a task out of any wait. Host-only, never saved.
final class Blocker: @unchecked Sendable {
    // `interrupted` is guarded by `condition`'s lock.
    private let condition = HostCondition()
    private var interrupted = false

    /// Sleeps until the host's CLOCK_MONOTONIC reaches `deadline` (ns), or
    /// until interrupted; returns true if interrupted. Consumes the interrupt.
    func sleep(untilHostMonotonic deadline: Int64) -> Bool {
        let start = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
        defer { BlockedTime.addSince(start) }
        return condition.withLock {
            while !interrupted {
                if !condition.wait(untilHostMonotonic: deadline) { return false }
            }
            interrupted = false
            return true
        }
    }

    /// Wakes the current or next sleep.
    func interrupt() {
        condition.withLock {
            interrupted = true
            condition.broadcast()
        }
    }

    /// Forgets a pending interrupt (the task handled the reason already).
    func clear() {
        condition.withLock { interrupted = false }
    }
}

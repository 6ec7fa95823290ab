import Glibc

/// Where a task waits inside the Sentry (nanosleep, and later futexes and
/// pipes): a host condition variable that `interrupt()` wakes, so exit and
/// checkpoint can pull a task out of any wait. Host-only, never saved.
final class Blocker: @unchecked Sendable {
    // `interrupted` is guarded by `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var interrupted = false

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Sleeps until the host's CLOCK_MONOTONIC reaches `deadline` (ns), or
    /// until interrupted; returns true if interrupted. Consumes the interrupt.
    func sleep(untilHostMonotonic deadline: Int64) -> Bool {
        var wake = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !interrupted {
            let result = pthread_cond_timedwait(condition, mutex, &wake)
            if result == ETIMEDOUT { return false }
        }
        interrupted = false
        return true
    }

    /// Wakes the current or next sleep.
    func interrupt() {
        pthread_mutex_lock(mutex)
        interrupted = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Forgets a pending interrupt (the task handled the reason already).
    func clear() {
        pthread_mutex_lock(mutex)
        interrupted = false
        pthread_mutex_unlock(mutex)
    }
}

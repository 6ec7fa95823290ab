#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A host mutex and a condition variable timed on CLOCK_MONOTONIC: what a
/// thread of ours blocks on when another must be able to wake it (a task's
/// sleep, the checkpoint's pause gate, compression workers, a restore's page
/// loader). Real pthread objects: these threads are never Swift
/// concurrency's cooperative pool. Host-only, never saved.
///
/// `@unchecked Sendable`: the pthread objects are the synchronization; what
/// they guard belongs to the owner, which touches it only between `lock()`
/// and `unlock()` (or inside `withLock`).
public final class HostCondition: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
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

    public func lock() { pthread_mutex_lock(mutex) }

    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a broadcast; the caller holds the lock.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a broadcast or until the host's CLOCK_MONOTONIC reaches
    /// `deadline` (ns); false on timeout. The caller holds the lock.
    public func wait(untilHostMonotonic deadline: Int64) -> Bool {
        var wake = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &wake) != ETIMEDOUT
    }

    /// Wakes every waiter; the caller holds the lock.
    public func broadcast() { pthread_cond_broadcast(condition) }
}

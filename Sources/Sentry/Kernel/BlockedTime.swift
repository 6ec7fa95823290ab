import Glibc

/// The time the calling host thread spent asleep in a Sentry wait (its
/// Waiter) since the run loop last took it: a task's thread is its own, so
/// the loop subtracts this from the system time it accounts, and a sleep is
/// not CPU time (CLOCK_*_CPUTIME_ID, ITIMER_PROF). Kept in a pthread key's
/// value itself: no allocation, no lock, no host syscall.
enum BlockedTime {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        _ = pthread_key_create(&key, nil)
        return key
    }()

    /// Adds the time from `start` (host CLOCK_MONOTONIC ns) to now.
    static func addSince(_ start: Int64) {
        let slept = max(0, Clocks.hostNanoseconds(CLOCK_MONOTONIC) - start)
        let current = Int64(Int(bitPattern: pthread_getspecific(key)))
        _ = pthread_setspecific(key, UnsafeRawPointer(bitPattern: Int(current.addingSaturating(slept))))
    }

    /// The time accumulated, reset to 0.
    static func take() -> Int64 {
        let current = Int(bitPattern: pthread_getspecific(key))
        guard current != 0 else { return 0 }
        _ = pthread_setspecific(key, nil)
        return Int64(current)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Rate limit of the log lines a seccomp LOG action writes, as Linux's
/// printk_ratelimit limits the audit records it prints without auditd: a
/// burst of `burst` lines per `interval`, then one line saying how many
/// were left out. A defaultAction LOG would otherwise log every syscall.
/// Host-only (the log is the host's), not saved.
final class SeccompLogLimit: Sendable {
    /// printk_ratelimit's defaults: 10 lines per 5 seconds.
    static let burst = 10
    static let interval: Int64 = 5_000_000_000

    private struct Window {
        var start: Int64 = 0
        var printed = 0
        var suppressed = 0
    }

    // A leaf: nothing is called under it.
    private let window = Mutex(Window())

    /// Whether a line may be logged now and, if so, how many were left out before it.
    func admit() -> (allowed: Bool, suppressed: Int) {
        let now = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
        return window.withLock { window in
            if now.subtractingReportingOverflow(window.start).partialValue >= Self.interval {
                let suppressed = window.suppressed
                window = Window(start: now, printed: 1, suppressed: 0)
                return (true, suppressed)
            }
            guard window.printed < Self.burst else {
                window.suppressed += 1
                return (false, 0)
            }
            window.printed += 1
            return (true, 0)
        }
    }
}

import Glibc
import State

/// The kernel's clocks. CLOCK_MONOTONIC (and BOOTTIME) are Sentry values:
/// the host's monotonic clock plus an offset, so that after a restore they
/// continue from the saved value instead of jumping to another host's uptime.
/// CLOCK_REALTIME follows the host.
public final class Clocks: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.Clocks"
    public static let notSaved: Set<String> = [
        "monotonicOffset", // the host clock's offset, recomputed in afterLoad from the saved monotonic time
    ]
    public static let savedAs: [String: String] = ["savedMonotonic": "monotonic"]

    /// Added to the host's monotonic nanoseconds. Set once at boot and once
    /// per restore, read without a lock afterwards.
    public private(set) var monotonicOffset: Int64 = 0
    /// The monotonic value when the image was saved (loaded, then used in afterLoad).
    private var savedMonotonic: Int64 = 0

    /// A fresh kernel's clocks: monotonic starts near zero, as a freshly booted machine's.
    public init() {
        monotonicOffset = -Clocks.hostNanoseconds(CLOCK_MONOTONIC) + 1_000_000_000
    }

    /// Nanoseconds of CLOCK_MONOTONIC as the application sees it.
    public func monotonic() -> Int64 {
        Clocks.hostNanoseconds(CLOCK_MONOTONIC) &+ monotonicOffset
    }

    /// Nanoseconds since the epoch.
    public func realtime() -> Int64 {
        Clocks.hostNanoseconds(CLOCK_REALTIME)
    }

    public static func hostNanoseconds(_ clock: clockid_t) -> Int64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("monotonic", monotonic())
    }

    public func load(from source: inout LoadSource) throws {
        savedMonotonic = try source.load("monotonic")
        try ImageValidation.require(savedMonotonic >= 0, field: "monotonic", "a negative monotonic clock")
    }

    /// Monotonic continues from where it was saved: no jump back, no downtime.
    public func afterLoad() throws {
        monotonicOffset = savedMonotonic &- Clocks.hostNanoseconds(CLOCK_MONOTONIC)
    }
}

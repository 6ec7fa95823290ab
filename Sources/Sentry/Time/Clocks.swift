import CShim
import Glibc
import State
import Synchronization

/// The kernel's clocks. CLOCK_MONOTONIC (and BOOTTIME) are Sentry values:
/// the host's monotonic clock plus an offset, so that after a restore they
/// continue from the saved value instead of jumping to another host's uptime.
/// CLOCK_REALTIME follows the host.
///
/// Once the TSC is calibrated (`Timekeeper`), both clocks are read from it
/// through the parameters the vDSO's data page holds, by the vDSO and by the
/// syscalls alike, so the two never disagree; the host clocks steer it.
public final class Clocks: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.Clocks"
    public static let notSaved: Set<String> = [
        "monotonicOffset", // the host clock's offset, recomputed in afterLoad from the saved monotonic time
        "timekeeper", // host-only: the TSC calibration of this host, made again after a restore
    ]
    public static let savedAs: [String: String] = ["savedMonotonic": "monotonic"]

    /// Added to the host's monotonic nanoseconds. Set once at boot and once
    /// per restore, read without a lock afterwards.
    public private(set) var monotonicOffset: Int64 = 0
    /// The monotonic value when the image was saved (loaded, then used in afterLoad).
    private var savedMonotonic: Int64 = 0
    /// Host-only: the TSC clock and the thread that steers it.
    private let timekeeper = Timekeeper()

    /// A fresh kernel's clocks: monotonic starts near zero, as a freshly booted machine's.
    public init() {
        monotonicOffset = -Clocks.hostNanoseconds(CLOCK_MONOTONIC) + 1_000_000_000
    }

    /// Nanoseconds of CLOCK_MONOTONIC as the application sees it.
    public func monotonic() -> Int64 {
        timekeeper.monotonic(hostOffset: monotonicOffset)
    }

    /// Nanoseconds since the epoch.
    public func realtime() -> Int64 {
        timekeeper.realtime()
    }

    public static func hostNanoseconds(_ clock: clockid_t) -> Int64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    /// Starts keeping the vDSO's data page in `memoryFile` current (a fresh
    /// kernel, or a restored one once its offset is set).
    public func startTimekeeping(publishingTo memoryFile: MemoryFile) {
        timekeeper.start(publishingTo: memoryFile, monotonicOffset: monotonicOffset)
    }

    /// Stops the timekeeping thread; when this returns it writes no more.
    public func stopTimekeeping() {
        timekeeper.stop()
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

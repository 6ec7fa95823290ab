#if canImport(Glibc)
import Glibc
#endif
import Sentry

/// Wall time per phase of a checkpoint or restore, for the `--debug` log:
/// where a slow checkpoint spent its time is the first thing to ask.
struct PhaseTimer {
    private var last = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
    private var phases: [(String, Int64)] = []

    /// Ends the current phase under `name`.
    mutating func mark(_ name: String) {
        let now = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
        phases.append((name, now - last))
        last = now
    }

    /// "pause 1.2 ms, state 3.4 ms, ..."
    var description: String {
        phases.map { name, nanoseconds in
            let tenths = (nanoseconds + 50_000) / 100_000
            return "\(name) \(tenths / 10).\(tenths % 10) ms"
        }.joined(separator: ", ")
    }
}

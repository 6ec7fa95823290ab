import CShim
import Glibc
import State
import Synchronization

/// The container's clocks read from the TSC, as gVisor's Timekeeper: the
/// parameters (a base TSC, the monotonic time at it, nanoseconds per tick)
/// are what the vDSO's data page holds, so an application's clock_gettime
/// costs no trap, and the Sentry reads its clocks from the same parameters,
/// so the vDSO and the syscalls agree to the nanosecond.
///
/// A host thread keeps them current: it calibrates the TSC against the host's
/// CLOCK_MONOTONIC (1 ms after starting, before the first program has been
/// loaded, then ever more precisely over a longer baseline), then once a second moves the base to now (the clock is
/// continuous) and sets the rate that brings the clock back to the host's
/// within the next interval, at most `maximumSlew` faster or slower: never
/// a step back. Realtime is monotonic plus the host's realtime-monotonic
/// difference, which follows a step of the host's clock at the next update.
/// Until calibrated, or on a CPU whose TSC does not tick steadily (not
/// invariant), the page says so and the vDSO asks the Sentry, whose clocks
/// then read the host's.
final class Timekeeper: @unchecked Sendable {
    /// The clocks as a function of the TSC (`cshim_vdso_params`).
    struct Parameters: Equatable {
        static let shift: UInt64 = 32
        var baseTSC: UInt64
        var baseMonotonic: Int64
        var multiplier: UInt64
        var realtimeOffset: Int64

        /// The vDSO's reading (vdso_params.h), to the bit.
        func monotonic(at tsc: UInt64) -> Int64 {
            cshim_vdso_monotonic_at(baseTSC, baseMonotonic, multiplier, Parameters.shift, tsc)
        }
    }

    /// A host instant seen on the TSC and both host clocks at once.
    struct Sample {
        var tsc: UInt64
        var monotonic: Int64
        var realtime: Int64
    }

    /// Calibration needs this much host time between two samples (a rate
    /// good to some ppm; the steering corrects the rest).
    static let minimumCalibration: Int64 = 1_000_000
    /// Updates come this often once calibrated.
    static let updateInterval: Int64 = 1_000_000_000
    /// The most the rate is bent to catch up with the host (Linux's NTP slews at most 500 ppm).
    static let maximumSlew = 500e-6
    /// Behind the host by more than this, the clock steps forward instead of slewing.
    static let maximumLag: Int64 = 1_000_000
    /// A change of realtime's offset smaller than this is noise of the sampling, not a host step.
    static let realtimeNoise: UInt64 = 1_000

    private struct State {
        var memoryFile: MemoryFile?
        var monotonicOffset: Int64 = 0
        var first: Sample?
        /// Nil until calibrated: the host clocks are read instead.
        var parameters: Parameters?
        /// The highest monotonic value read from the host before calibration.
        var latestHostMonotonic: Int64 = .min
    }

    // Guarded by `state`, a leaf but for the MemoryFile's lock taken under it to write the page.
    private let state = Mutex<State>(State())
    // `running` and `stopped` are guarded by `condition`'s lock, taken before `state`.
    private let condition = HostCondition()
    private var running = false
    private var stopped = false
    /// The Sentry's own copy of the data page, written with it under `state`
    /// and read without a lock through its seqcount, as the vDSO reads the page.
    private let published: UnsafeMutablePointer<cshim_vdso_params> = {
        let page = UnsafeMutablePointer<cshim_vdso_params>.allocate(capacity: 1)
        page.initialize(to: cshim_vdso_params())
        return page
    }()

    deinit {
        published.deallocate()
    }

    /// Writes `values` (all but the sequence) to the page and to `published`, under `state`.
    private func publish(_ page: UnsafeMutablePointer<cshim_vdso_params>, _ values: (() -> cshim_vdso_params)) {
        cshim_vdso_write_begin(page)
        cshim_vdso_write_begin(published)
        var next = values()
        cshim_vdso_write_end(page, &next)
        cshim_vdso_write_end(published, &next)
    }

    /// Monotonic nanoseconds from the TSC, or until calibrated the host's
    /// plus `offset`, never below what was read before (remembered: the
    /// calibrated clock starts no lower).
    func monotonic(hostOffset offset: Int64) -> Int64 {
        var now: Int64 = 0
        if cshim_vdso_read_clock(published, 0, &now) != 0 { return now }
        return state.withLock { state in
            if let parameters = state.parameters { return parameters.monotonic(at: cshim_rdtsc()) }
            state.latestHostMonotonic = max(state.latestHostMonotonic, Clocks.hostNanoseconds(CLOCK_MONOTONIC) &+ offset)
            return state.latestHostMonotonic
        }
    }

    /// Realtime nanoseconds from the TSC, or the host's until calibrated.
    func realtime() -> Int64 {
        var now: Int64 = 0
        if cshim_vdso_read_clock(published, 1, &now) != 0 { return now }
        return state.withLock { state in
            guard let parameters = state.parameters else { return Clocks.hostNanoseconds(CLOCK_REALTIME) }
            return parameters.monotonic(at: cshim_rdtsc()) &+ parameters.realtimeOffset
        }
    }

    /// Starts the thread (once) that calibrates the TSC and keeps the data
    /// page of `memoryFile` current; nothing on a CPU without an invariant TSC.
    func start(publishingTo memoryFile: MemoryFile, monotonicOffset: Int64) {
        guard cshim_tsc_is_invariant() != 0 else { return }
        condition.withLock {
            guard !running, !stopped else { return }
            state.withLock { state in
                state.memoryFile = memoryFile
                state.monotonicOffset = monotonicOffset
                state.first = Timekeeper.sample()
            }
            do {
                let keeper = WeakBox(self)
                try HostThread.start(detached: true) { Timekeeper.run(keeper) }
                running = true
            } catch {
                // The vDSO falls back to the syscalls: slower, still right.
            }
        }
    }

    /// Ends the thread for good; once this returns the page is never written
    /// again (an update writes under `state`, and finds no memory file).
    func stop() {
        condition.withLock {
            stopped = true
            state.withLock { $0.memoryFile = nil }
            condition.broadcast()
        }
    }

    /// The thread: an update after 1 ms, 10 ms, 100 ms, then every second, until
    /// stopped or the memory file is gone (a discarded kernel).
    private static func run(_ weakKeeper: WeakBox<Timekeeper>) {
        var interval = minimumCalibration
        while let keeper = weakKeeper.value {
            let deadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC) &+ interval
            let stopped = keeper.condition.withLock { () -> Bool in
                while !keeper.stopped, Clocks.hostNanoseconds(CLOCK_MONOTONIC) < deadline {
                    _ = keeper.condition.wait(untilHostMonotonic: deadline)
                }
                return keeper.stopped
            }
            interval = min(interval * 10, updateInterval)
            if stopped || !keeper.update(nextInterval: interval) { return }
        }
    }

    /// One update from `sample`; false once there is no page to write.
    func update(nextInterval: Int64, sample: Sample = Timekeeper.sample()) -> Bool {
        state.withLock { state -> Bool in
            guard let memoryFile = state.memoryFile, let first = state.first else { return false }
            if sample.tsc <= first.tsc || sample.tsc < state.parameters?.baseTSC ?? 0 {
                // The TSC went back (a reset, a migration): no rate holds any more. The clocks read
                // the host's, never below what they reached, and calibrate again from here.
                if let previous = state.parameters {
                    state.latestHostMonotonic = max(state.latestHostMonotonic, previous.baseMonotonic)
                }
                state.parameters = nil
                state.first = sample
                return memoryFile.withVDSOParameters { page in
                    publish(page) {
                        var values = page.pointee
                        values.tsc_usable = 0
                        return values
                    }
                }
            }
            guard sample.monotonic - first.monotonic >= Timekeeper.minimumCalibration else { return true }
            // Nanoseconds per tick over everything seen since the start.
            let rate = Double(sample.monotonic - first.monotonic) / Double(sample.tsc - first.tsc)
            guard rate.isFinite, rate > 0, rate < 1_000 else { return true }
            let offset = state.monotonicOffset
            let previous = state.parameters
            return memoryFile.withVDSOParameters { page in
                publish(page) {
                    let tsc = cshim_rdtsc()
                    let now = tsc > sample.tsc ? Int64(exactly: (Double(tsc - sample.tsc) * rate).rounded()) ?? 0 : 0
                    let target = sample.monotonic &+ offset &+ now
                    var base = max(target, state.latestHostMonotonic)
                    var slew = 0.0
                    if let previous {
                        let current = previous.monotonic(at: tsc)
                        let error = current &- target
                        if error >= -Timekeeper.maximumLag {
                            base = current
                            slew = min(max(-Double(error) / Double(nextInterval), -Timekeeper.maximumSlew),
                                       Timekeeper.maximumSlew)
                        }
                    }
                    var realtimeOffset = (sample.realtime &- sample.monotonic) &- offset
                    if let previous, (realtimeOffset &- previous.realtimeOffset).magnitude < Timekeeper.realtimeNoise {
                        realtimeOffset = previous.realtimeOffset
                    }
                    let scaled = (rate * (1 + slew) * Double(UInt64(1) << Parameters.shift)).rounded()
                    let next = Parameters(baseTSC: tsc, baseMonotonic: base,
                                          multiplier: UInt64(exactly: scaled) ?? previous?.multiplier ?? 0,
                                          realtimeOffset: realtimeOffset)
                    var values = cshim_vdso_params()
                    values.tsc_usable = next.multiplier > 0 ? 1 : 0
                    values.base_tsc = next.baseTSC
                    values.base_monotonic = next.baseMonotonic
                    values.multiplier = next.multiplier
                    values.shift = Parameters.shift
                    values.realtime_offset = next.realtimeOffset
                    state.parameters = next.multiplier > 0 ? next : nil
                    return values
                }
            }
        }
    }

    /// The TSC and the host clocks read together: of three tries, the one
    /// read fastest, its TSC taken midway.
    static func sample() -> Sample {
        var best: (Sample, UInt64)?
        for _ in 0..<3 {
            let before = cshim_rdtsc()
            let monotonic = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            let realtime = Clocks.hostNanoseconds(CLOCK_REALTIME)
            let monotonicAgain = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            let after = cshim_rdtsc()
            guard after >= before else { continue }
            let spread = after - before
            let sample = Sample(tsc: before + spread / 2, monotonic: monotonic + (monotonicAgain - monotonic) / 2,
                                realtime: realtime)
            if best == nil || spread < best?.1 ?? .max { best = (sample, spread) }
        }
        return best?.0 ?? Sample(tsc: cshim_rdtsc(), monotonic: Clocks.hostNanoseconds(CLOCK_MONOTONIC),
                                 realtime: Clocks.hostNanoseconds(CLOCK_REALTIME))
    }
}

/// A weak reference the timekeeping thread holds between updates.
private final class WeakBox<T: AnyObject>: @unchecked Sendable {
    weak var value: T?
    init(_ value: T?) { self.value = value }
}

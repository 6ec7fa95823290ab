import CShim
import Synchronization

/// Chooses a CPU for each (Sentry thread, stub thread) pair, so that a pair
/// shares one CPU (a cross-CPU wake-up costs ten times a same-CPU switch here).
/// The first pair goes where the host scheduler put the Sentry thread, which
/// is where it found room: starting every sandbox on CPU 0 stacked them on one
/// CPU. Later pairs go round-robin from there over the CPUs of the whole
/// process: a task thread started by a pinned one inherits its one-CPU mask,
/// and choosing among those put every thread of a program on one CPU.
enum CPUPlacement {
    private static let pairs = Atomic<Int>(0)

    /// Pins the calling thread and `stubThread` to one CPU; nil if the host
    /// refused (pinning is a speed-up, never required).
    static func pin(caller: Bool, stubThread: Int32) -> Int32? {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = Int(cshim_allowed_cpus(&cpus, Int32(cpus.count)))
        guard count > 0 else { return nil }
        let current = cshim_current_cpu()
        let start = cpus[0..<count].firstIndex(of: current) ?? 0
        let cpu = cpus[(start + pairs.wrappingAdd(1, ordering: .relaxed).oldValue) % count]
        if caller && cshim_pin_thread(0, cpu) != 0 { return nil }
        if cshim_pin_thread(stubThread, cpu) != 0 { return nil }
        return cpu
    }
}

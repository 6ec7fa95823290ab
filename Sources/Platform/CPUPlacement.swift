import CShim
import Synchronization

/// Chooses CPUs for (Sentry thread, stub thread) pairs round-robin over the
/// CPUs the process may use, so pairs spread out while each pair shares one.
enum CPUPlacement {
    private static let next = Atomic<Int>(0)

    /// Pins the calling thread and `stubThread` to the next CPU; nil if the
    /// host refused (pinning is a speed-up, never required).
    static func pin(caller: Bool, stubThread: Int32) -> Int32? {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = cshim_allowed_cpus(&cpus, Int32(cpus.count))
        guard count > 0 else { return nil }
        let cpu = cpus[next.wrappingAdd(1, ordering: .relaxed).oldValue % Int(count)]
        if caller && cshim_pin_thread(0, cpu) != 0 { return nil }
        if cshim_pin_thread(stubThread, cpu) != 0 { return nil }
        return cpu
    }
}

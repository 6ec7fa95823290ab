import CShim
import Synchronization

/// Chooses a CPU for each (Sentry thread, stub thread) pair, so that a pair
/// shares one CPU (a cross-CPU wake-up costs ten times a same-CPU switch here).
/// The first pair goes where the host scheduler put the Sentry thread, which
/// is where it found room: starting every sandbox on CPU 0 stacked them on one
/// CPU. Later pairs start round-robin from there over the CPUs of the whole
/// process (a task thread started by a pinned one would inherit its mask).
/// A pair starts pinned; from its first switch on only the stub thread is,
/// and it follows its Sentry thread (`Context`), as gVisor's ptrace platform
/// binds it: a stub thread that never traps keeps its round-robin CPU, and
/// two threads that wake each other can come onto one CPU (pinned apart, a
/// futex ping-pong took 103-115 us a round trip, free 47-60 us).
enum CPUPlacement {
    private static let pairs = Atomic<Int>(0)

    /// Pins the calling thread and `stubThread` to one CPU; nil if the host
    /// refused (placement is a speed-up, never required).
    static func place(stubThread: Int32) -> Int32? {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = Int(cshim_allowed_cpus(&cpus, Int32(cpus.count)))
        guard count > 0 else { return nil }
        let current = cshim_current_cpu()
        let start = cpus[0..<count].firstIndex(of: current) ?? 0
        let cpu = cpus[(start + pairs.wrappingAdd(1, ordering: .relaxed).oldValue) % count]
        guard cshim_pin_thread(0, cpu) == 0 else { return nil }
        guard cshim_pin_thread(stubThread, cpu) == 0 else {
            _ = cshim_unpin_thread(0)
            return nil
        }
        return cpu
    }

    /// Lets the calling thread run on every CPU of the process again.
    static func freeCaller() {
        _ = cshim_unpin_thread(0)
    }

    /// Pins `stubThread` to the CPU the calling thread runs on now when it
    /// is not `pinned` already; the CPU it is pinned to after, or nil when
    /// the host refused, now or before: the pair stops following rather
    /// than retry a failing call on every switch.
    static func follow(stubThread: Int32, pinned: Int32?) -> Int32? {
        guard let pinned else { return nil }
        let current = cshim_current_cpu()
        guard current >= 0, current != pinned else { return pinned }
        return cshim_pin_thread(stubThread, current) == 0 ? current : nil
    }
}

import CShim
import Synchronization

/// Chooses a CPU for each (Sentry thread, stub thread) pair, so that a pair
/// shares one CPU (a cross-CPU wake-up costs ten times a same-CPU switch here).
/// The first pair goes where the host scheduler put the Sentry thread, which
/// is where it found room: starting every sandbox on CPU 0 stacked them on one
/// CPU. Later pairs start round-robin from there over the CPUs of the whole
/// process (a task thread started by a pinned one would inherit its mask);
/// a task moving to a new stub keeps its CPU.
///
/// Both threads of a pair stay pinned while the Sentry thread drives its stub
/// thread without sleeping. Left free, the Sentry thread was woken by its
/// stopping stub onto the other, idle CPU at about one stop in four, and the
/// stub followed it: a migration, a cross-CPU wake-up and a sched_setaffinity
/// each time (getpid round trip 15.1 us free, 10.8 us pinned; the epoll_wait
/// bench 16.1 us against 12.6). A Sentry thread that sleeps in the Sentry is
/// let go (`releaseCaller`), so that the host places its wake-up where there
/// is room or beside whoever woke it, and its stub thread follows it from
/// switch to switch (`follow`), as gVisor's ptrace platform binds its stub
/// threads; it pins itself again only after a few switches without sleeping:
/// pinning at every wake-up cost a process that sleeps every few syscalls
/// two calls each time (a TCP 1-byte ping-pong 57.6 us against 47.7). It
/// pins itself where it runs unless another busy Sentry thread is pinned
/// there and a CPU of the process has none (`cshim_pin_self_spread`): the
/// host's wake-ups tend to put a writer and its reader on one CPU, and once
/// both are pinned the host cannot spread them. A stub thread that never
/// traps keeps its CPU.
public enum CPUPlacement {
    private static let pairs = Atomic<Int>(0)

    /// Pins the calling thread and `stubThread` to one CPU; nil if the host
    /// refused (placement is a speed-up, never required). A caller pinned
    /// already drives a task that moves to a new stub (an exec, a fork's
    /// fresh stub): the stub comes to its CPU, where the task was running.
    static func place(stubThread: Int32) -> Int32? {
        let caller = cshim_pinned_cpu()
        if caller >= 0 { return cshim_pin_thread(stubThread, caller) == 0 ? caller : nil }
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

    /// Lets the calling thread run on every CPU of the process while it
    /// sleeps: called by a Sentry thread before it blocks.
    public static func releaseCaller() {
        _ = cshim_unpin_thread_if_pinned()
    }

    /// Switches an unpinned caller makes, its stub thread following it,
    /// before it pins itself again.
    public static let switchesBeforePinning = 4

    /// Keeps `stubThread` on the calling thread's CPU, and pins the calling
    /// thread there once it has made `switchesBeforePinning` switches since
    /// it was let go (`streak` counts them); the CPU the stub thread is on
    /// after, or nil when the host refused, now or before: the pair stops
    /// following rather than retry a failing call on every switch.
    static func follow(stubThread: Int32, pinned: Int32?, streak: inout Int) -> Int32? {
        guard let pinned else { return nil }
        var caller = cshim_pinned_cpu()
        if caller >= 0 {
            streak = 0
        } else {
            caller = cshim_current_cpu()
            guard caller >= 0 else { return nil }
            if streak < switchesBeforePinning {
                streak += 1
            } else {
                caller = cshim_pin_self_spread(caller)
                guard caller >= 0 else { return nil }
                streak = 0
            }
        }
        guard caller != pinned else { return pinned }
        return cshim_pin_thread(stubThread, caller) == 0 ? caller : nil
    }
}

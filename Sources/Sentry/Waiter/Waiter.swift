import CShim
import Glibc
import Platform
import State
import Synchronization

/// The one way a task's host thread blocks inside the Sentry (gVisor's
/// `pkg/waiter` and Linux's `schedule()` in a wait): a sleep, a futex, a pipe
/// read, wait4, signalfd and timerfd reads, poll and epoll all block here.
/// Three things end a block: a wake-up (`notify`, usually from a `WaitEntry`
/// the task registered on a `WaitQueue`), an interrupt (a signal, an exit or
/// the checkpoint's pause: `Task.interrupt`), and the deadline.
///
/// Waking is not interrupting: a wake-up is consumed by the block it ends,
/// an interrupt stays until the task has handled it (`clearInterrupt`), so a
/// task on its way out of the Sentry never blocks again. One per task,
/// host-only, never saved: a task saved blocked re-runs its syscall and
/// registers again.
///
/// A block spins a little before it sleeps while fewer task threads run
/// than there are CPUs (`spinLimit`), as the Go scheduler under gVisor's
/// Sentry spins before it parks: a wake-up that comes soon (a futex or
/// condition variable handed between two threads) then costs no host
/// wake-up, which on these VMs is most of a round trip.
public final class Waiter: @unchecked Sendable { // `woken` and `interrupted` are guarded by `condition`'s lock
    /// Innermost: taken under any WaitQueue's lock and any object's lock that notifies.
    private let condition = HostCondition()
    private var woken = false
    private var interrupted = false
    private var blocking = false
    /// `woken || interrupted`, readable without the lock, for the spin.
    private let pending = Atomic<Bool>(false)

    /// The longest a block spins before it sleeps, in ns: a futex round
    /// trip between two threads took 5.3-5.9 us with it and 6.5-10 us without.
    static let spinLimit: Int64 = 10_000
    /// Task threads of this process not asleep in a block (`taskThreadStarted`).
    private static let running = Atomic<Int>(0)
    private static let cpus = Int(cshim_available_cpus())

    /// A task's host thread begins (or ends) running tasks: it counts as
    /// running until it sleeps in a block.
    static func taskThreadStarted() { running.add(1, ordering: .relaxed) }
    static func taskThreadEnded() { running.subtract(1, ordering: .relaxed) }

    public init() {}

    /// Ends the current block, or the next one if none is under way.
    public func notify() {
        condition.lock()
        woken = true
        pending.store(true, ordering: .releasing)
        condition.broadcast()
        condition.unlock()
    }

    /// Makes the current and every later block throw ERESTARTSYS until
    /// `clearInterrupt()`.
    public func interrupt() {
        condition.lock()
        interrupted = true
        pending.store(true, ordering: .releasing)
        condition.broadcast()
        condition.unlock()
    }

    /// Whether the task sleeps here now: procfs shows it S (sleeping), not R.
    public var isBlocked: Bool {
        condition.lock()
        defer { condition.unlock() }
        return blocking
    }

    public var isInterrupted: Bool {
        condition.lock()
        defer { condition.unlock() }
        return interrupted
    }

    /// Called by the task once it has handled what interrupted it.
    public func clearInterrupt() {
        condition.lock()
        interrupted = false
        pending.store(woken, ordering: .relaxed)
        condition.unlock()
    }

    /// Forgets a wake-up that came before the caller looked at its condition:
    /// the pattern is reset, look, block.
    public func reset() {
        condition.lock()
        woken = false
        pending.store(interrupted, ordering: .relaxed)
        condition.unlock()
    }

    /// Blocks until a wake-up (true), the host's CLOCK_MONOTONIC reaching
    /// `deadline` in ns (false), or an interrupt (throws ERESTARTSYS). The
    /// time asleep is no CPU time (BlockedTime).
    @discardableResult
    public func block(untilHostMonotonic deadline: Int64? = nil) throws(SyscallError) -> Bool {
        let start = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
        defer { BlockedTime.addSince(start) }
        spin(from: start, until: deadline)
        // Asleep, the thread may wake wherever its waker runs (CPUPlacement);
        // a block is called once its condition was found unmet, so it sleeps.
        CPUPlacement.releaseCaller()
        Self.running.subtract(1, ordering: .relaxed)
        condition.lock()
        defer {
            blocking = false
            condition.unlock()
            Self.running.add(1, ordering: .relaxed)
        }
        blocking = true
        while true {
            if interrupted { throw .erestartsys }
            if woken {
                woken = false
                pending.store(interrupted, ordering: .relaxed)
                return true
            }
            if let deadline {
                if !condition.wait(untilHostMonotonic: deadline),
                   !woken, !interrupted { return false }
            } else {
                condition.wait()
            }
        }
    }

    /// Waits on the CPU for `pending` up to `spinLimit` (or `deadline`)
    /// while a CPU is left for the other running task threads; the block
    /// then finds what came under its lock.
    private func spin(from start: Int64, until deadline: Int64?) {
        let end = min(start + Self.spinLimit, deadline ?? .max)
        while !pending.load(ordering: .acquiring) {
            guard Self.running.load(ordering: .relaxed) <= Self.cpus,
                  Clocks.hostNanoseconds(CLOCK_MONOTONIC) < end else { return }
            for _ in 0..<20 { cshim_cpu_relax() }
        }
    }

    /// An entry that wakes this waiter when one of `mask` happens.
    public func entry(for mask: PollEvents) -> WaitEntry {
        WaitEntry(mask: mask) { [self] _ in
            notify()
            return true
        }
    }

    /// Blocks on `queue` until `take` gives a value (signalfd, timerfd: the
    /// queue announces `mask` when one may have come).
    func wait<T>(on queue: WaitQueue, for mask: PollEvents, until take: () -> T?) throws(SyscallError) -> T {
        let entry = entry(for: mask)
        queue.register(entry)
        defer { queue.unregister(entry) }
        while true {
            reset()
            if let value = take() { return value }
            try block()
        }
    }
}

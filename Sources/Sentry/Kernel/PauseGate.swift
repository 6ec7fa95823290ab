import Glibc
import State
import Synchronization

/// The checkpoint's pause: it knows every task whose thread runs (so a pause
/// knows whom to wait for) and which of them have parked. A parked task
/// blocks on its own `Waiter`, as in any other wait; the gate wakes it when
/// the pause ends. Its condition is only for the thread that pauses.
/// Host-only, never saved.
final class PauseGate: @unchecked Sendable {
    // `requested`, `running`, `parked` and `discarded` are guarded by `condition`'s lock.
    private let condition = HostCondition()
    private var requested = false
    /// Set once, by `discard`: parked tasks end instead of going on.
    private var discarded = false
    private var running: [ObjectIdentifier: Task] = [:]
    private var parked: Set<ObjectIdentifier> = []
    /// `requested`, readable without the lock: tasks look at it at every stop.
    private let flag = Atomic<Bool>(false)

    /// Whether tasks must park at their next stop.
    var isRequested: Bool { flag.load(ordering: .acquiring) }

    /// Whether the kernel was thrown away while its tasks were parked (asked only after a park).
    var isDiscarded: Bool { condition.withLock { discarded } }

    /// A task's thread is about to run (called before the thread exists, so a
    /// pause that starts meanwhile waits for it).
    func enter(_ task: Task) {
        condition.withLock { running[ObjectIdentifier(task)] = task }
    }

    /// A task's thread is done.
    func leave(_ task: Task) {
        condition.withLock {
            running[ObjectIdentifier(task)] = nil
            parked.remove(ObjectIdentifier(task))
            condition.broadcast()
        }
    }

    /// Called by the task's own thread: waits until the pause is over.
    /// Interrupts that come meanwhile (a signal) are forgotten: their
    /// signals stay pending, and the stub's kick brings the task back.
    func park(_ task: Task) {
        let key = ObjectIdentifier(task)
        condition.withLock {
            parked.insert(key)
            condition.broadcast()
        }
        while true {
            task.waiter.reset()
            task.waiter.clearInterrupt()
            guard condition.withLock({ requested && !discarded }) else { break }
            _ = try? task.waiter.block()
        }
        condition.withLock { _ = parked.remove(key) }
    }

    /// Wakes every parked task (the gate's state changed); the caller holds the lock.
    private func wakeParkedLocked() {
        for key in parked { running[key]?.waiter.notify() }
    }

    /// Asks every running task to park and waits until all have (or exited).
    /// Tasks still out after `timeout` nanoseconds fail the pause, which is undone.
    func pause(timeoutNanoseconds: Int64) throws(KernelPauseError) {
        let deadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC) + timeoutNanoseconds
        condition.lock()
        requested = true
        flag.store(true, ordering: .releasing)
        while true {
            let pending = running.filter { !parked.contains($0.key) }.map(\.value)
            if pending.isEmpty { break }
            let now = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            if now >= deadline {
                requested = false
                flag.store(false, ordering: .releasing)
                wakeParkedLocked()
                condition.broadcast()
                condition.unlock()
                throw KernelPauseError(stuckTasks: pending.map(\.id).sorted())
            }
            // Kicks are idempotent and coalesce; repeat them in case a task
            // was between its check and a wait when the first one came.
            condition.unlock()
            for task in pending { task.interrupt() }
            condition.lock()
            _ = condition.wait(untilHostMonotonic: min(deadline, now + 20_000_000))
        }
        condition.unlock()
    }

    /// Ends a pause by ending every parked task's thread (Kernel.discard);
    /// returns once none runs.
    func discard() {
        condition.withLock {
            discarded = true
            wakeParkedLocked()
            condition.broadcast()
            while !running.isEmpty { condition.wait() }
        }
    }

    /// Lets parked tasks go on.
    func resume() {
        condition.withLock {
            requested = false
            flag.store(false, ordering: .releasing)
            wakeParkedLocked()
            condition.broadcast()
        }
    }
}

/// A pause that could not bring every task out of the Sentry in time.
public struct KernelPauseError: Error, Sendable, CustomStringConvertible {
    public let stuckTasks: [Int32]

    public var description: String {
        "cannot pause the container: task(s) \(stuckTasks.map(String.init).joined(separator: ", ")) did not stop in time"
    }
}

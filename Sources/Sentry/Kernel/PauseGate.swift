import Glibc
import Synchronization

/// Where tasks wait while the kernel is paused for a checkpoint. It knows
/// every task whose thread runs (so a pause knows whom to wait for) and
/// which of them have parked; host-only, never saved.
final class PauseGate: @unchecked Sendable {
    // `requested`, `running` and `parked` are guarded by `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var requested = false
    private var running: [ObjectIdentifier: Task] = [:]
    private var parked: Set<ObjectIdentifier> = []
    /// `requested`, readable without the lock: tasks look at it at every stop.
    private let flag = Atomic<Bool>(false)

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Whether tasks must park at their next stop.
    var isRequested: Bool { flag.load(ordering: .acquiring) }

    /// A task's thread is about to run (called before the thread exists, so a
    /// pause that starts meanwhile waits for it).
    func enter(_ task: Task) {
        withLock { running[ObjectIdentifier(task)] = task }
    }

    /// A task's thread is done.
    func leave(_ task: Task) {
        withLock {
            running[ObjectIdentifier(task)] = nil
            parked.remove(ObjectIdentifier(task))
            pthread_cond_broadcast(condition)
        }
    }

    /// Called by the task's own thread: waits until the pause is over.
    func park(_ task: Task) {
        let key = ObjectIdentifier(task)
        withLock {
            parked.insert(key)
            pthread_cond_broadcast(condition)
            while requested { pthread_cond_wait(condition, mutex) }
            parked.remove(key)
        }
    }

    /// Asks every running task to park and waits until all have (or exited).
    /// Tasks still out after `timeout` nanoseconds fail the pause, which is undone.
    func pause(timeoutNanoseconds: Int64) throws(KernelPauseError) {
        let deadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC) + timeoutNanoseconds
        pthread_mutex_lock(mutex)
        requested = true
        flag.store(true, ordering: .releasing)
        while true {
            let pending = running.filter { !parked.contains($0.key) }.map(\.value)
            if pending.isEmpty { break }
            let now = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            if now >= deadline {
                requested = false
                flag.store(false, ordering: .releasing)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
                throw KernelPauseError(stuckTasks: pending.map(\.id).sorted())
            }
            // Kicks are idempotent and coalesce; repeat them in case a task
            // was between its check and a wait when the first one came.
            pthread_mutex_unlock(mutex)
            for task in pending { task.interrupt() }
            pthread_mutex_lock(mutex)
            let wake = min(deadline, now + 20_000_000)
            var time = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
            _ = pthread_cond_timedwait(condition, mutex, &time)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Lets parked tasks go on.
    func resume() {
        withLock {
            requested = false
            flag.store(false, ordering: .releasing)
            pthread_cond_broadcast(condition)
        }
    }

    private func withLock<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }
}

/// A pause that could not bring every task out of the Sentry in time.
public struct KernelPauseError: Error, Sendable, CustomStringConvertible {
    public let stuckTasks: [Int32]

    public var description: String {
        "cannot pause the container: task(s) \(stuckTasks.map(String.init).joined(separator: ", ")) did not stop in time"
    }
}

import CShim
import Glibc
import Synchronization

/// A real pthread for driving stub threads. ptrace binds a tracee to one
/// host thread, so Sentry work that calls into `Context` or `AddressSpace`
/// must run on a thread of its own, never on Swift concurrency's pool.
///
/// The pthread is reused: when `body` returns, the thread parks in an idle
/// pool (`DedicatedThreadPool`) and runs the next `DedicatedThread`'s body,
/// instead of ending while another pthread is made (a fork made and ended
/// two of them: the child's task thread and its address space's owner).
/// A body runs from start to end on one pthread, so ptrace's binding holds;
/// it must leave no tracee behind (Context.release, the owner's reap), as
/// it must already for a thread that ends (PTRACE_O_EXITKILL).
public final class DedicatedThread: Sendable {
    private let job: Job

    /// Starts `body` on a pthread named `name` (first 15 bytes): an idle one
    /// when there is one, else a new one. A reused pthread starts `body` as a
    /// new one would (see `DedicatedThreadPool.park`). Nobody need `join`.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(PlatformError) {
        job = Job(name: name, body)
        try DedicatedThreadPool.shared.run(job)
    }

    /// Waits until the body has returned.
    public func join() {
        job.waitFinished()
    }

    /// One body to run and whether it has returned. `@unchecked Sendable`:
    /// `finished` is guarded by `condition`.
    final class Job: @unchecked Sendable {
        let name: String
        let body: @Sendable () -> Void
        private var finished = false
        private let condition = HostMutexCondition()

        init(name: String, _ body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }

        /// Runs the body on the calling (pool) thread under the job's name.
        func run() {
            name.withCString { cshim_name_current_thread($0) }
            body()
            condition.withLock {
                finished = true
                condition.broadcast()
            }
        }

        func waitFinished() {
            condition.withLock {
                while !finished { condition.wait() }
            }
        }
    }
}

/// The pthreads that run `DedicatedThread` bodies, and the idle ones among
/// them. Each pthread is detached; after a body it parks here for the next
/// one, unless `capacity` are idle already, then it ends.
final class DedicatedThreadPool: Sendable {
    static let shared = DedicatedThreadPool()

    /// The most idle pthreads kept.
    static let capacity = 16

    /// Idle pthreads, the most recently parked last. Taken with no other
    /// lock held; nothing is called under it.
    private let idle = Mutex<[Worker]>([])

    /// Gives `job` to an idle pthread, or starts one for it.
    func run(_ job: DedicatedThread.Job) throws(PlatformError) {
        if let worker = idle.withLock({ $0.popLast() }) {
            worker.give(job)
            return
        }
        let worker = Worker(first: job)
        let box = Unmanaged.passRetained(worker).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        // Not its creator's CPU: a Sentry thread driving a stub is pinned.
        _ = cshim_thread_attributes_any_cpu(&attributes)
        let result = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let worker = Unmanaged<Worker>.fromOpaque(raw).takeRetainedValue()
            DedicatedThreadPool.shared.serve(worker)
            return nil
        }, box)
        if result != 0 {
            Unmanaged<Worker>.fromOpaque(box).release()
            throw PlatformError(.startThread, errno: result)
        }
    }

    /// The pthread's life: run the job it was made or woken for, park, repeat.
    private func serve(_ worker: Worker) {
        while true {
            worker.next().run()
            guard park(worker) else { return }
        }
    }

    /// Readies the calling pthread for another body and makes it idle;
    /// false (it ends) when the pool is full. A new pthread inherits the
    /// process's CPUs (placement pins a thread only while it drives a stub,
    /// `CPUPlacement`): one its body left pinned is let go on all of them.
    private func park(_ worker: Worker) -> Bool {
        _ = cshim_unpin_thread_if_pinned()
        return idle.withLock { idle -> Bool in
            guard idle.count < Self.capacity else { return false }
            idle.append(worker)
            return true
        }
    }

    /// One pthread of the pool and the job it is given. `@unchecked
    /// Sendable`: `job` is guarded by `condition`.
    final class Worker: @unchecked Sendable {
        private var job: DedicatedThread.Job?
        private let condition = HostMutexCondition()

        init(first: DedicatedThread.Job) {
            job = first
        }

        func give(_ next: DedicatedThread.Job) {
            condition.withLock {
                job = next
                condition.broadcast()
            }
        }

        /// Waits for the next job and takes it.
        func next() -> DedicatedThread.Job {
            condition.withLock {
                while true {
                    if let taken = job {
                        job = nil
                        return taken
                    }
                    condition.wait()
                }
            }
        }
    }
}

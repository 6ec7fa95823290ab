#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CShim

/// Runs jobs on dedicated worker threads and hands results back in submission
/// order, with at most `window` jobs in flight so memory stays bounded however
/// large the image.
///
/// The owner (one thread: the one doing file I/O) calls `submit` and `next`;
/// workers only take jobs and post results. Real pthreads, never Swift
/// concurrency's cooperative pool: compression is long CPU-bound work that
/// would starve every other task of that pool.
///
/// `@unchecked Sendable`: all mutable state (`pending`, `pendingHead`,
/// `finished`, `stopping`) is guarded by `mutex`; `submitted` and `taken` are
/// touched by the owner thread only.
final class OrderedWorkQueue<Job, Output>: @unchecked Sendable {
    typealias Work = (Job, CodecContext) throws -> Output

    let window: Int
    private let work: Work
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    private var pending: [(sequence: Int, job: Job)] = []
    private var pendingHead = 0
    private var finished: [Int: Result<Output, any Error>] = [:]
    private var stopping = false
    private var threads: [pthread_t] = []
    private var submitted = 0
    private var taken = 0
    /// Used when there are no worker threads: jobs run inline in `submit`.
    private let inlineContext = CodecContext()

    /// `workers == 0` runs every job on the owner thread (single-threaded mode).
    init(workers: Int, window: Int, work: @escaping Work) {
        self.work = work
        self.window = max(window, 1)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        changed = .allocate(capacity: 1)
        changed.initialize(to: pthread_cond_t())
        pthread_cond_init(changed, nil)
        for _ in 0..<max(workers, 0) {
            guard let thread = spawnThread({ [self] in workerLoop() }) else { break }
            threads.append(thread)
        }
    }

    deinit {
        shutdown()
        pthread_cond_destroy(changed)
        changed.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    var inFlight: Int { submitted - taken }
    var isFull: Bool { inFlight >= window }
    var workerCount: Int { threads.count }

    /// Queues `job`; the caller first drains with `next()` while `isFull`.
    func submit(_ job: Job) {
        let sequence = submitted
        submitted += 1
        if threads.isEmpty {
            let result = Result { try work(job, inlineContext) }
            finished[sequence] = result
            return
        }
        pthread_mutex_lock(mutex)
        pending.append((sequence, job))
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    /// The result of the oldest job not yet taken; waits for it if needed.
    func next() throws -> Output {
        let sequence = taken
        taken += 1
        if threads.isEmpty {
            guard let result = finished.removeValue(forKey: sequence) else {
                throw CodecFailure("no job in flight")
            }
            return try result.get()
        }
        pthread_mutex_lock(mutex)
        while finished[sequence] == nil && sequence < submitted {
            pthread_cond_wait(changed, mutex)
        }
        let result = finished.removeValue(forKey: sequence)
        pthread_mutex_unlock(mutex)
        guard let result else { throw CodecFailure("no job in flight") }
        return try result.get()
    }

    /// Stops the workers (dropping queued jobs) and joins them. Idempotent.
    func shutdown() {
        guard !threads.isEmpty else { return }
        pthread_mutex_lock(mutex)
        stopping = true
        pending.removeAll()
        pendingHead = 0
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
        for thread in threads {
            pthread_join(thread, nil)
        }
        threads.removeAll()
        finished.removeAll()
    }

    private func workerLoop() {
        let context = CodecContext()
        pthread_mutex_lock(mutex)
        while true {
            while pendingHead == pending.count && !stopping {
                pthread_cond_wait(changed, mutex)
            }
            if stopping { break }
            let (sequence, job) = pending[pendingHead]
            pendingHead += 1
            if pendingHead == pending.count {
                pending.removeAll(keepingCapacity: true)
                pendingHead = 0
            }
            pthread_mutex_unlock(mutex)
            let result = Result { try work(job, context) }
            pthread_mutex_lock(mutex)
            if !stopping {
                finished[sequence] = result
                pthread_cond_broadcast(changed)
            }
        }
        pthread_mutex_unlock(mutex)
    }
}

/// How many CPUs this process may run on (its affinity mask, as a container
/// limits it), at least 1.
public func availableProcessors() -> Int {
    max(Int(cshim_available_cpus()), 1)
}

final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Starts a joinable pthread running `body`; nil if the system refuses one
/// (the queue then runs with fewer workers).
func spawnThread(_ body: @escaping () -> Void) -> pthread_t? {
    let box = Unmanaged.passRetained(ThreadBody(body))
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { argument in
        guard let argument else { return nil }
        Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue().run()
        return nil
    }, box.toOpaque())
    guard result == 0 else {
        box.release()
        return nil
    }
    return thread
}

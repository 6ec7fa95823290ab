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
/// `finished`, `stopping`) is guarded by `changed`'s lock; `submitted` and `taken` are
/// touched by the owner thread only.
final class OrderedWorkQueue<Job, Output>: @unchecked Sendable {
    typealias Work = (Job, CodecContext) throws -> Output

    let window: Int
    private let work: Work
    private let changed = HostCondition()
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
        for _ in 0..<max(workers, 0) {
            guard let thread = try? HostThread.start({ [self] in workerLoop() }) else { break }
            threads.append(thread)
        }
    }

    deinit {
        shutdown()
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
        changed.lock()
        pending.append((sequence, job))
        changed.broadcast()
        changed.unlock()
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
        changed.lock()
        while finished[sequence] == nil && sequence < submitted {
            changed.wait()
        }
        let result = finished.removeValue(forKey: sequence)
        changed.unlock()
        guard let result else { throw CodecFailure("no job in flight") }
        return try result.get()
    }

    /// Stops the workers (dropping queued jobs) and joins them. Idempotent.
    func shutdown() {
        guard !threads.isEmpty else { return }
        changed.lock()
        stopping = true
        pending.removeAll()
        pendingHead = 0
        changed.broadcast()
        changed.unlock()
        for thread in threads {
            pthread_join(thread, nil)
        }
        threads.removeAll()
        finished.removeAll()
    }

    private func workerLoop() {
        let context = CodecContext()
        changed.lock()
        while true {
            while pendingHead == pending.count && !stopping {
                changed.wait()
            }
            if stopping { break }
            let (sequence, job) = pending[pendingHead]
            pendingHead += 1
            if pendingHead == pending.count {
                pending.removeAll(keepingCapacity: true)
                pendingHead = 0
            }
            changed.unlock()
            let result = Result { try work(job, context) }
            changed.lock()
            if !stopping {
                finished[sequence] = result
                changed.broadcast()
            }
        }
        changed.unlock()
    }
}

/// How many CPUs this process may run on (its affinity mask, as a container
/// limits it), at least 1.
public func availableProcessors() -> Int {
    max(Int(cshim_available_cpus()), 1)
}

import CShim
import Glibc
import Synchronization

/// The host thread that owns an address space: it creates the stub (or
/// takes a pooled one, `AddressSpace.init`), traces
/// its first thread, and runs requests on that thread for others (cloning a
/// stub thread for a joining task, a host call from a thread that traces no
/// stub thread). It runs no application code, so it is never busy running a
/// task when a request comes; requests run one at a time, in order.
final class AddressSpaceOwner: Sendable {
    /// The stub's host PID.
    let pid: Int32
    private let queue = RequestQueue()
    private let thread: DedicatedThread

    /// Starts the owner thread, which runs `create` and keeps the stub
    /// thread it returns; throws what `create` threw.
    init(_ create: @escaping @Sendable () throws(PlatformError) -> StubThread) throws(PlatformError) {
        let started = Request()
        let queue = self.queue
        thread = try DedicatedThread(name: "stub-owner") {
            let leader: StubThread
            do throws(PlatformError) {
                leader = try create()
            } catch {
                started.finish(.failure(error))
                return
            }
            started.finish(.success(Int64(leader.pid)))
            while let request = queue.next() {
                guard let body = request.body else {
                    request.last?(leader)
                    request.finish(.success(0))
                    return
                }
                do throws(PlatformError) {
                    request.finish(.success(try body(leader)))
                } catch {
                    request.finish(.failure(error))
                }
            }
        }
        switch started.wait() {
        case .success(let value):
            pid = Int32(truncatingIfNeeded: value)
        case .failure(let error):
            thread.join()
            throw error
        }
    }

    /// Runs `body` on the owner's thread with the stub's first thread and
    /// returns what it returned.
    func perform<T: FixedWidthInteger>(_ body: @escaping @Sendable (StubThread) throws(PlatformError) -> T) throws(PlatformError) -> T {
        let request = Request { thread throws(PlatformError) in Int64(truncatingIfNeeded: try body(thread)) }
        queue.append(request)
        let value = try request.wait().get()
        return T(truncatingIfNeeded: value)
    }

    /// Runs `body` on the owner's thread with the stub's first thread, without waiting for it.
    func submit(_ body: @escaping @Sendable (StubThread) -> Void) {
        queue.append(Request { thread throws(PlatformError) in
            body(thread)
            return 0
        })
    }

    /// Runs `last` on the owner's thread with the stub's first thread (it
    /// kills and reaps the stub, or gives it to the pool), then ends the
    /// owner thread; waits for both.
    func stop(_ last: @escaping @Sendable (StubThread) -> Void) {
        let request = Request(last: last)
        queue.append(request)
        _ = request.wait()
        thread.join()
    }

    /// `stop` without waiting: the owner thread runs `last` and ends on its own.
    func stopDetached(_ last: @escaping @Sendable (StubThread) -> Void) {
        queue.append(Request(last: last))
    }

    /// One request and, once run, its result. `@unchecked Sendable`:
    /// `result` is guarded by `condition`.
    private final class Request: @unchecked Sendable {
        /// nil: stop, after running `last`.
        let body: (@Sendable (StubThread) throws(PlatformError) -> Int64)?
        let last: (@Sendable (StubThread) -> Void)?
        private var result: Result<Int64, PlatformError>?
        private let condition = HostMutexCondition()

        init(_ body: @escaping @Sendable (StubThread) throws(PlatformError) -> Int64) {
            self.body = body
            last = nil
        }

        init(last: @escaping @Sendable (StubThread) -> Void) {
            body = nil
            self.last = last
        }

        /// A result only (the owner's start).
        init() {
            body = nil
            last = nil
        }

        func finish(_ outcome: Result<Int64, PlatformError>) {
            condition.withLock {
                result = outcome
                condition.broadcast()
            }
        }

        func wait() -> Result<Int64, PlatformError> {
            condition.withLock {
                while true {
                    if let result { return result }
                    condition.wait()
                }
            }
        }
    }

    /// The owner's requests, oldest first. `@unchecked Sendable`: `pending`
    /// is guarded by `condition`.
    private final class RequestQueue: @unchecked Sendable {
        private var pending: [Request] = []
        private let condition = HostMutexCondition()

        func append(_ request: Request) {
            condition.withLock {
                pending.append(request)
                condition.broadcast()
            }
        }

        /// Waits for the next request.
        func next() -> Request? {
            condition.withLock {
                while pending.isEmpty { condition.wait() }
                return pending.removeFirst()
            }
        }
    }
}

/// A pthread mutex and condition variable (the Platform target cannot use
/// State's HostCondition). `@unchecked Sendable`: the pthread objects are the
/// synchronization.
final class HostMutexCondition: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a broadcast; the caller holds the lock.
    func wait() { pthread_cond_wait(condition, mutex) }

    func broadcast() { pthread_cond_broadcast(condition) }
}

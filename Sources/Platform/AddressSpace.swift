import CShim
import Glibc
import Synchronization

/// One application address space: a stub process that maps nothing of the
/// host but our code page, and into which the Sentry maps MemoryFile ranges.
///
/// Threading: ptrace only accepts requests from a tracee's tracer thread.
/// The thread that creates an `AddressSpace` becomes the tracer of the stub's
/// first thread and is its *owner*: `map`, `unmap`, `protect` and
/// `Context(addressSpace:)` must be called on a thread that traces one of
/// the stub's threads (today: the owner), and throw `.ownership` otherwise.
/// Injected calls run on the calling thread's own stub thread, so the Sentry
/// thread that handles a task's fault maps memory without a thread hop.
/// `release()`, `pid` and `Interrupter` may be used from any thread.
public final class AddressSpace: Sendable {
    /// The stub's process ID on the host (for diagnostics and tests).
    public let pid: Int32
    /// The first address above what the application may map: the stub page.
    public static let maximumUserAddress: UInt64 = CSHIM_STUB_ADDRESS
    /// The stub's code page (`syscall; int3` for injected calls lives there).
    public static let stubPageAddress: UInt64 = CSHIM_STUB_ADDRESS
    /// The FD number the MemoryFile has inside every stub.
    public static let memoryFileDescriptor: Int32 = CSHIM_STUB_MEMFD
    /// Test hook, set only by `runsc boot --debug` (RUNSC_TEST_STUB_FORBIDDEN_CALL):
    /// each new stub is made to run getppid, which its seccomp filter forbids,
    /// so a test sees the filter kill it.
    public static let testForbiddenCall = Atomic<Bool>(false)
    /// Benchmark hook, set only by `runsc boot --debug` (RUNSC_TEST_UNFILTERED_STUBS):
    /// new stubs install no seccomp filter (NoNewPrivs stays), so
    /// scripts/bench-platform can measure what the filter costs.
    public static let testUnfiltered = Atomic<Bool>(false)

    /// The MemoryFile the stub holds, to tell its pooled stubs from others'.
    private let memoryFile: MemoryFileIdentity

    private struct State {
        /// Stub threads by the TID of their tracer (Sentry) thread.
        var threads: [Int32: StubThread] = [:]
        var released = false
    }
    private let state: Mutex<State>

    /// Gives the calling thread a stub whose only host FD is `memoryFile`
    /// (duplicated to `memoryFileDescriptor`) and makes it the stub's tracer:
    /// an idle one from the pool when there is one, else a new one. The
    /// caller keeps its own `memoryFile` descriptor.
    public init(memoryFile descriptor: Int32) throws(PlatformError) {
        let identity = try MemoryFileIdentity(descriptor: descriptor)
        let (pid, first) = try Self.obtainStub(memoryFile: descriptor, identity)
        StubPool.shared.makeSpares(memoryFile: identity, descriptor: descriptor)
        if Self.testForbiddenCall.load(ordering: .relaxed) {
            defer { StubProcess.killAndReap(pid) }
            let result = try first.inject(Int(SYS_getppid))
            throw PlatformError(.createStub, errno: EPROTO,
                                detail: "the stub's seccomp filter let getppid through (it returned \(result))")
        }
        self.pid = pid
        memoryFile = identity
        state = Mutex(State(threads: [first.tracer: first]))
    }

    /// An idle stub of the pool attached to the calling thread, or a new one.
    private static func obtainStub(memoryFile descriptor: Int32,
                                   _ identity: MemoryFileIdentity) throws(PlatformError) -> (Int32, StubThread) {
        while let idle = StubPool.shared.take(identity) {
            // A pooled stub that cannot be attached (it died) is ended and the next tried.
            if let first = try? attachProven(pid: idle.pid, template: idle.template) { return (idle.pid, first) }
            StubProcess.killAndReap(idle.pid)
        }
        let created = try StubProcess.create(memoryFile: descriptor)
        do throws(PlatformError) {
            return (created, try attachProven(pid: created, template: nil))
        } catch {
            StubProcess.killAndReap(created)
            throw error
        }
    }

    /// Attaches to a stub in group-stop and proves it runs injected calls,
    /// which also drains the SIGSTOP that PTRACE_ATTACH queued.
    private static func attachProven(pid: Int32, template: Registers?) throws(PlatformError) -> StubThread {
        let first = try StubThread.attach(pid: pid, tid: pid, template: template)
        let echoed = try first.inject(Int(SYS_getpid))
        if echoed != Int64(pid) {
            throw PlatformError(.inject, errno: EPROTO, detail: "stub getpid returned \(echoed), expected \(pid)")
        }
        return first
    }

    deinit {
        release()
    }

    /// Kills the stub and reaps it. Idempotent, from any thread; a `Context`
    /// running in it returns `.died`.
    public func release() {
        let first = state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        if first { StubProcess.killAndReap(pid) }
    }

    /// Ends this address space but keeps its stub for another (`StubPool`):
    /// everything below the stub page is unmapped, and the stub, let go into
    /// group-stop, holds nothing of the application. Called on the thread
    /// tracing the stub's only thread, with no `Context` running in it;
    /// from elsewhere, or when emptying fails, the stub is killed as by
    /// `release()`. Idempotent with `release()`.
    public func recycle() {
        let caller = cshim_current_tid()
        let (first, only) = state.withLock { state -> (Bool, StubThread?) in
            defer { state.released = true }
            guard !state.released else { return (false, nil) }
            return (true, state.threads.count == 1 ? state.threads[caller] : nil)
        }
        guard first else { return }
        guard let only, empty(only) else {
            StubProcess.killAndReap(pid)
            return
        }
        if !StubPool.shared.give(StubPool.Idle(pid: pid, memoryFile: memoryFile, template: only.initialRegisters)) {
            StubProcess.killAndReap(pid)
        }
    }

    /// Unmaps everything the application had and detaches; false if the
    /// stub did not take it (it died, or was killed by its filter).
    private func empty(_ thread: StubThread) -> Bool {
        guard let result = try? thread.inject(Int(SYS_munmap), 0, Self.maximumUserAddress), result == 0 else {
            return false
        }
        return (try? thread.detachStopped()) != nil
    }

    /// Like `release()`, but only the kill happens now (the stub never runs
    /// again); its exit, which unmaps all it mapped (tens of milliseconds for
    /// a GiB), is waited for on a detached thread, or here if none starts.
    public func releaseInBackground() {
        let first = state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        guard first else { return }
        _ = cshim_kill(pid, SIGKILL)
        let pid = pid
        do {
            _ = try DedicatedThread(name: "stub-reaper", detached: true) { StubProcess.killAndReap(pid) }
        } catch {
            StubProcess.killAndReap(pid)
        }
    }

    /// Maps `length` bytes of the MemoryFile at `fileOffset` to `address` in
    /// the stub, shared and fixed (replacing what was there).
    public func map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection) throws(PlatformError) {
        try checkRange(address, length)
        if fileOffset % pageSize != 0 {
            throw PlatformError(.validate, errno: EINVAL, detail: "file offset \(fileOffset) not page aligned")
        }
        let result = try callingThread().inject(Int(SYS_mmap), address, length, UInt64(protection.rawValue),
                                                UInt64(MAP_SHARED | MAP_FIXED), UInt64(CSHIM_STUB_MEMFD), fileOffset)
        if result < 0 { throw PlatformError(.inject, errno: Int32(-result), detail: "mmap") }
        if UInt64(bitPattern: result) != address {
            throw PlatformError(.inject, errno: EPROTO, detail: "mmap returned \(result), expected \(address)")
        }
    }

    /// Unmaps a range in the stub; unmapped pages fault with SEGV_MAPERR.
    public func unmap(address: UInt64, length: UInt64) throws(PlatformError) {
        try checkRange(address, length)
        let result = try callingThread().inject(Int(SYS_munmap), address, length)
        if result < 0 { throw PlatformError(.inject, errno: Int32(-result), detail: "munmap") }
    }

    /// Changes the protection of a mapped range; accesses it forbids fault
    /// with SEGV_ACCERR.
    public func protect(address: UInt64, length: UInt64, protection: Protection) throws(PlatformError) {
        try checkRange(address, length)
        let result = try callingThread().inject(Int(SYS_mprotect), address, length, UInt64(protection.rawValue))
        if result < 0 { throw PlatformError(.inject, errno: Int32(-result), detail: "mprotect") }
    }

    /// Access rights of a mapping (PROT_READ, PROT_WRITE, PROT_EXEC).
    public struct Protection: OptionSet, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let read = Protection(rawValue: PROT_READ)
        public static let write = Protection(rawValue: PROT_WRITE)
        public static let execute = Protection(rawValue: PROT_EXEC)
        public static let none: Protection = []
    }

    /// The stub thread traced by the calling thread.
    func callingThread() throws(PlatformError) -> StubThread {
        let caller = cshim_current_tid()
        let found = state.withLock { state -> StubThread? in
            state.released ? nil : state.threads[caller]
        }
        guard let found else {
            throw PlatformError(.ownership, errno: EPERM,
                                detail: "thread \(caller) traces no thread of stub \(pid) (or it was released)")
        }
        return found
    }

    private let pageSize: UInt64 = 4096

    /// Refuses unaligned ranges and anything touching the stub page: the
    /// Sentry must never be able to replace the code it injects through.
    private func checkRange(_ address: UInt64, _ length: UInt64) throws(PlatformError) {
        guard address % pageSize == 0, length % pageSize == 0, length > 0 else {
            throw PlatformError(.validate, errno: EINVAL, detail: "range \(address)+\(length) not page aligned")
        }
        let (end, overflow) = address.addingReportingOverflow(length)
        guard !overflow, end <= Self.maximumUserAddress else {
            throw PlatformError(.validate, errno: EINVAL, detail: "range \(address)+\(length) reaches the stub page")
        }
    }
}

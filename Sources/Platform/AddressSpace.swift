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

    private struct State {
        /// Stub threads by the TID of their tracer (Sentry) thread.
        var threads: [Int32: StubThread] = [:]
        var released = false
    }
    private let state: Mutex<State>

    /// Creates a stub whose only host FD is `memoryFile` (duplicated to
    /// `memoryFileDescriptor`); the calling thread becomes its tracer. The
    /// caller keeps its own `memoryFile` descriptor.
    public init(memoryFile: Int32) throws(PlatformError) {
        let filter = Self.testUnfiltered.load(ordering: .relaxed) ? [] : try StubFilter.program.get()
        let created = filter.withUnsafeBufferPointer { program in
            cshim_stub_create(memoryFile, program.isEmpty ? nil : program.baseAddress,
                              UInt16(truncatingIfNeeded: program.count))
        }
        if created < 0 { throw PlatformError(.createStub, errno: -created) }
        pid = created
        do throws(PlatformError) {
            let first = try StubThread.attach(pid: created, tid: created)
            // Proves the stub runs injected calls, and drains the SIGSTOP
            // that PTRACE_ATTACH queued.
            let echoed = try first.inject(Int(SYS_getpid))
            if echoed != Int64(created) {
                throw PlatformError(.inject, errno: EPROTO, detail: "stub getpid returned \(echoed), expected \(created)")
            }
            if Self.testForbiddenCall.load(ordering: .relaxed) {
                let result = try first.inject(Int(SYS_getppid))
                throw PlatformError(.createStub, errno: EPROTO,
                                    detail: "the stub's seccomp filter let getppid through (it returned \(result))")
            }
            state = Mutex(State(threads: [first.tracer: first]))
        } catch {
            Self.killAndReap(created)
            throw error
        }
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
        if first { Self.killAndReap(pid) }
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
            _ = try DedicatedThread(name: "stub-reaper", detached: true) { Self.killAndReap(pid) }
        } catch {
            Self.killAndReap(pid)
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

    private static func killAndReap(_ pid: Int32) {
        _ = cshim_kill(pid, SIGKILL)
        while true {
            var status: Int32 = 0
            // ECHILD: a Context's wait collected it first.
            if cshim_wait_thread(pid, &status) < 0 { return }
            if cshim_status_exited(status) != 0 || cshim_status_signaled(status) != 0 { return }
        }
    }
}

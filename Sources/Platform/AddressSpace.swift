import CShim
import Glibc
import Synchronization

/// One application address space: a stub process that maps nothing of the
/// host but our code page, and into which the Sentry maps MemoryFile ranges.
///
/// Threading: ptrace only accepts requests from a tracee's tracer thread.
/// Each address space has an *owner*, a host thread of its own that creates
/// the stub, traces its first thread (which never runs application code)
/// and makes new stub threads on request: a thread that joins the address
/// space (`Context(addressSpace:)`) asks the owner for one and seizes it, so
/// no tracer busy running a task is ever needed for that, and every
/// application thread is a stub thread driven by its own Sentry thread.
///
/// Host calls into the stub (`map`, `unmap`, `protect`) change mappings every
/// stub thread shares. They run on the calling thread's own stub thread when
/// it traces one (it is stopped while its tracer is in the Sentry, so the
/// thread that handles a task's fault maps memory without a thread hop, and
/// the other threads keep running); a caller that traces none has the owner
/// run them on the first thread. The MM serialises them under its lock.
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
    private let state = Mutex(State())
    /// The host thread that traces the stub's first thread.
    private let owner: AddressSpaceOwner

    /// Creates a stub whose only host FD is `memoryFile` (duplicated to
    /// `memoryFileDescriptor`), with its owner thread. The caller keeps its
    /// own `memoryFile` descriptor.
    public init(memoryFile: Int32) throws(PlatformError) {
        let filter = Self.testUnfiltered.load(ordering: .relaxed) ? [] : try StubFilter.program.get()
        let forbidden = Self.testForbiddenCall.load(ordering: .relaxed)
        owner = try AddressSpaceOwner { () throws(PlatformError) -> StubThread in
            try Self.createStub(memoryFile: memoryFile, filter: filter, forbiddenCall: forbidden)
        }
        pid = owner.pid
    }

    deinit {
        release()
    }

    /// Kills the stub and reaps it (the owner does, and ends). Idempotent,
    /// from any thread; a `Context` running in it returns `.died`. A stub's
    /// first thread is reaped only after its other threads: the caller's
    /// own is collected here, any other's by its tracer (`.died`).
    public func release() {
        let (first, own) = state.withLock { state -> (Bool, StubThread?) in
            defer { state.released = true }
            return (!state.released, state.threads.removeValue(forKey: cshim_current_tid()))
        }
        guard first else { return }
        _ = cshim_kill(pid, SIGKILL)
        own?.collectExit()
        owner.stop()
    }

    /// A new stub thread for the calling thread, which becomes its tracer
    /// (Context.init). The owner clones it; the caller seizes it.
    func joinThread() throws(PlatformError) -> StubThread {
        if state.withLock({ $0.released }) {
            throw PlatformError(.ownership, errno: ESRCH, detail: "stub \(pid) was released")
        }
        let tid = try owner.perform { leader throws(PlatformError) in try leader.cloneThread() }
        let thread = try StubThread.seize(pid: pid, tid: tid)
        state.withLock { $0.threads[thread.tracer] = thread }
        return thread
    }

    /// Ends the calling thread's stub thread (Context.release).
    func leaveThread(_ thread: StubThread) {
        _ = state.withLock { $0.threads.removeValue(forKey: thread.tracer) }
        try? thread.exitThread()
    }

    /// Maps `length` bytes of the MemoryFile at `fileOffset` to `address` in
    /// the stub, shared and fixed (replacing what was there).
    public func map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection) throws(PlatformError) {
        try checkRange(address, length)
        if fileOffset % pageSize != 0 {
            throw PlatformError(.validate, errno: EINVAL, detail: "file offset \(fileOffset) not page aligned")
        }
        let result = try injectForCaller(Int(SYS_mmap), address, length, UInt64(protection.rawValue),
                                          UInt64(MAP_SHARED | MAP_FIXED), UInt64(CSHIM_STUB_MEMFD), fileOffset)
        if result < 0 { throw PlatformError(.inject, errno: Int32(-result), detail: "mmap") }
        if UInt64(bitPattern: result) != address {
            throw PlatformError(.inject, errno: EPROTO, detail: "mmap returned \(result), expected \(address)")
        }
    }

    /// Unmaps a range in the stub; unmapped pages fault with SEGV_MAPERR.
    public func unmap(address: UInt64, length: UInt64) throws(PlatformError) {
        try checkRange(address, length)
        let result = try injectForCaller(Int(SYS_munmap), address, length)
        if result < 0 { throw PlatformError(.inject, errno: Int32(-result), detail: "munmap") }
    }

    /// Changes the protection of a mapped range; accesses it forbids fault
    /// with SEGV_ACCERR.
    public func protect(address: UInt64, length: UInt64, protection: Protection) throws(PlatformError) {
        try checkRange(address, length)
        let result = try injectForCaller(Int(SYS_mprotect), address, length, UInt64(protection.rawValue))
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

    /// Runs a host call in the stub on the calling thread's own stub thread,
    /// or on the owner's when the caller traces none.
    private func injectForCaller(_ number: Int, _ args: UInt64...) throws(PlatformError) -> Int64 {
        let caller = cshim_current_tid()
        let (own, released) = state.withLock { ($0.threads[caller], $0.released) }
        if released { throw PlatformError(.ownership, errno: ESRCH, detail: "stub \(pid) was released") }
        if let own { return try own.inject(number, args) }
        return try owner.perform { leader throws(PlatformError) in try leader.inject(number, args) }
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

    /// Runs on the owner's thread: forks the stub, attaches to its first
    /// thread and proves it runs injected calls (which drains the SIGSTOP
    /// PTRACE_ATTACH queued).
    private static func createStub(memoryFile: Int32, filter: [sock_filter],
                                   forbiddenCall: Bool) throws(PlatformError) -> StubThread {
        let created = filter.withUnsafeBufferPointer { program in
            cshim_stub_create(memoryFile, program.isEmpty ? nil : program.baseAddress,
                              UInt16(truncatingIfNeeded: program.count))
        }
        if created < 0 { throw PlatformError(.createStub, errno: -created) }
        do throws(PlatformError) {
            let first = try StubThread.attach(pid: created, tid: created)
            let echoed = try first.inject(Int(SYS_getpid))
            if echoed != Int64(created) {
                throw PlatformError(.inject, errno: EPROTO, detail: "stub getpid returned \(echoed), expected \(created)")
            }
            if forbiddenCall {
                let result = try first.inject(Int(SYS_getppid))
                throw PlatformError(.createStub, errno: EPROTO,
                                    detail: "the stub's seccomp filter let getppid through (it returned \(result))")
            }
            return first
        } catch {
            killAndReap(created)
            throw error
        }
    }

    static func killAndReap(_ pid: Int32) {
        _ = cshim_kill(pid, SIGKILL)
        while true {
            var status: Int32 = 0
            // ECHILD: a Context's wait collected it first.
            if cshim_wait_thread(pid, &status) < 0 { return }
            if cshim_status_exited(status) != 0 || cshim_status_signaled(status) != 0 { return }
        }
    }
}

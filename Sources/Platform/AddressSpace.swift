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
/// Host calls into the stub (`map`, `unmap`, `protect`, `apply`) change mappings every
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

    /// The MemoryFile the stub holds, to tell its pooled stubs from others'.
    private let memoryFile: MemoryFileIdentity

    private struct State {
        /// Stub threads by the TID of their tracer (Sentry) thread.
        var threads: [Int32: StubThread] = [:]
        var released = false
    }
    private let state = Mutex(State())
    /// The host thread that traces the stub's first thread.
    private let owner: AddressSpaceOwner
    /// A stub thread the owner cloned while it made (or recycled) the stub,
    /// for the first `joinThread`: the thread that makes an address space
    /// joins it next, and so without a second request to the owner.
    private let readyThread = ReadyThread()

    /// Takes a recycled stub of the pool with its owner and ready thread
    /// (`StubPool.Prepared`) when there is one; else starts an owner thread,
    /// which takes a spare when there is one, else makes a new stub, traces
    /// its first thread (a spare is set up exactly as a fresh one) and
    /// clones the stub thread the first `joinThread` takes. The stub's
    /// only host FD is `memoryFile` (duplicated to `memoryFileDescriptor`);
    /// the caller keeps its own `memoryFile` descriptor.
    public init(memoryFile descriptor: Int32) throws(PlatformError) {
        let identity = try MemoryFileIdentity(descriptor: descriptor)
        let forbidden = Self.testForbiddenCall.load(ordering: .relaxed)
        let ready = readyThread
        memoryFile = identity
        if !forbidden, let prepared = Self.takeLivePrepared(identity) {
            // Emptied, traced by its owner and with a thread ready: nothing to wait for.
            owner = prepared.owner
            pid = prepared.owner.pid
            ready.offer(prepared.ready)
            StubPool.shared.makeSpares(memoryFile: identity, descriptor: descriptor)
            return
        }
        // The owner runs this while init waits, so `descriptor` is still open.
        owner = try AddressSpaceOwner { () throws(PlatformError) -> StubThread in
            let first = try Self.obtainStub(memoryFile: descriptor, identity)
            if forbidden {
                defer { StubProcess.killAndReap(first.pid) }
                let result = try first.inject(Int(SYS_getppid))
                throw PlatformError(.createStub, errno: EPROTO,
                                    detail: "the stub's seccomp filter let getppid through (it returned \(result))")
            }
            // Failing here only sends the first joiner to the owner, to fail there with its error.
            if let tid = try? first.cloneThread() { ready.offer(tid) }
            return first
        }
        pid = owner.pid
        StubPool.shared.makeSpares(memoryFile: identity, descriptor: descriptor)
    }

    /// A prepared stub of the pool whose ready thread still lives; one that
    /// died in the pool (the host killed it) is ended and the next tried.
    private static func takeLivePrepared(_ identity: MemoryFileIdentity) -> StubPool.Prepared? {
        while let prepared = StubPool.shared.takePrepared(identity) {
            if cshim_tgkill(prepared.owner.pid, prepared.ready, 0) == 0 { return prepared }
            prepared.owner.stopDetached { leader in StubProcess.killAndReap(leader.pid) }
        }
        return nil
    }

    /// The MemoryFile open as `descriptor` is about to close (its kernel is
    /// gone): the pool's idle stubs holding it are killed, so they do not
    /// keep its memory alive.
    public static func memoryFileClosing(_ descriptor: Int32) {
        guard let identity = try? MemoryFileIdentity(descriptor: descriptor) else { return }
        StubPool.shared.forget(identity)
    }

    /// Runs on the owner's thread: an idle stub of the pool attached to it,
    /// or a new one.
    private static func obtainStub(memoryFile descriptor: Int32,
                                   _ identity: MemoryFileIdentity) throws(PlatformError) -> StubThread {
        while let idle = StubPool.shared.take(identity) {
            // A pooled stub that cannot be attached (it died) is ended and the next tried.
            if let first = try? StubThread.attach(pid: idle.pid, tid: idle.pid) { return first }
            StubProcess.killAndReap(idle.pid)
        }
        let created = try StubProcess.create(memoryFile: descriptor)
        do throws(PlatformError) {
            return try StubThread.attach(pid: created, tid: created)
        } catch {
            StubProcess.killAndReap(created)
            throw error
        }
    }

    deinit {
        release()
    }

    /// Kills the stub and reaps it (the owner does, and ends). Idempotent,
    /// from any thread; a `Context` running in it returns `.died`. A stub's
    /// first thread is reaped only after its other threads: the caller's
    /// own is collected here, any other's by its tracer (`.died`).
    public func release() {
        if markReleased() { kill(waiting: true) }
    }

    /// Ends this address space but keeps its stub for another (`StubPool`):
    /// the owner unmaps everything below the stub page and clones the
    /// thread the next address space's first `joinThread` takes, so the stub
    /// holds nothing of the application and the next address space waits
    /// for nothing; the owner stays, tracing the first thread, and goes to
    /// the pool with it. Only a stub whose application threads have all left
    /// (`leaveThread`) is kept: one with any left, or one that fails to
    /// empty or to clone, is killed as by `release()`, and so is one whose
    /// ready thread nobody took. Returns before the owner has emptied it.
    /// Idempotent with `release()`.
    public func recycle() {
        let (first, alone) = state.withLock { state -> (Bool, Bool) in
            defer { state.released = true }
            return (!state.released, state.threads.isEmpty)
        }
        guard first else { return }
        guard alone, readyThread.take() == nil else {
            kill(waiting: true)
            return
        }
        let memoryFile = memoryFile
        let owner = owner
        // Nobody waits: the exit or exec that let the stub go goes on while the owner empties it.
        owner.submit { leader in
            guard (try? Self.unmapAll(leader)) != nil, let ready = try? leader.cloneThread(),
                  StubPool.shared.give(prepared: StubPool.Prepared(owner: owner, ready: ready, memoryFile: memoryFile))
            else {
                owner.stopDetached { leader in StubProcess.killAndReap(leader.pid) }
                return
            }
        }
    }

    /// Sets `released`; true for the first caller, who ends the stub.
    private func markReleased() -> Bool {
        state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
    }

    /// Kills the stub and has the caller's own stub thread collected (a
    /// stub's first thread is reaped only after its others; another's is
    /// collected by its tracer, `.died`) and the owner reap the first thread
    /// and end: by the caller and the owner while the caller waits, or all by
    /// the owner.
    private func kill(waiting: Bool) {
        let own = state.withLock { $0.threads.removeValue(forKey: cshim_current_tid()) }
        // Whichever stub thread exits last unmaps all the stub mapped (tens of
        // milliseconds for a GiB): kept off the caller's CPU, where it held
        // up the caller's next calls to its new stub (a fork at 1 GiB
        // resident took 0.2-5 ms to map its new stub's first pages).
        // In the background it also yields to every other thread: it ran
        // beside a forked child's start and held that up instead.
        let caller = cshim_pinned_cpu()
        for tid in [own?.tid, pid].compactMap({ $0 }) {
            _ = cshim_pin_thread_away(tid, caller)
            if !waiting { _ = cshim_deprioritize_thread(tid) }
        }
        _ = cshim_kill(pid, SIGKILL)
        let reap: @Sendable (StubThread) -> Void = { leader in StubProcess.killAndReap(leader.pid) }
        if waiting {
            own?.collectExit()
            owner.stop(reap)
        } else {
            // The owner's thread may reap the caller's tracee: one thread group.
            owner.stopDetached { leader in
                own?.collectExit()
                reap(leader)
            }
        }
    }

    /// Unmaps the whole user range (everything below the stub page) on `thread`.
    private static func unmapAll(_ thread: StubThread) throws(PlatformError) {
        let result = try thread.inject(Int(SYS_munmap), 0, maximumUserAddress)
        if result < 0 { throw PlatformError(.inject, errno: Int32(truncatingIfNeeded: -result), detail: "munmap") }
    }

    /// Like `release()`, but only the kill happens now (the stub never runs
    /// again); its threads' exits, the last of which unmaps all the stub
    /// mapped (tens of milliseconds for a GiB), are waited for by the owner,
    /// which nobody waits for.
    public func releaseInBackground() {
        if markReleased() { kill(waiting: false) }
    }

    /// A new stub thread for the calling thread, which becomes its tracer
    /// (Context.init). The owner clones it; `place` is given its TID before
    /// the caller seizes it.
    func joinThread(place: (Int32) -> Void) throws(PlatformError) -> StubThread {
        if state.withLock({ $0.released }) {
            throw PlatformError(.ownership, errno: ESRCH, detail: "stub \(pid) was released")
        }
        let tid: Int32
        if let ready = readyThread.take() {
            tid = ready
        } else {
            tid = try owner.perform { leader throws(PlatformError) in try leader.cloneThread() }
        }
        place(tid)
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

    /// Unmaps everything the application may map, as a recycled stub is
    /// emptied (exec's hand-over of a stub to a new MM).
    public func unmapAll() throws(PlatformError) {
        try onCallersThread { thread throws(PlatformError) in
            try Self.unmapAll(thread)
            return 0
        }
    }

    /// Changes the protection of a mapped range; accesses it forbids fault
    /// with SEGV_ACCERR.
    public func protect(address: UInt64, length: UInt64, protection: Protection) throws(PlatformError) {
        try checkRange(address, length)
        let result = try injectForCaller(Int(SYS_mprotect), address, length, UInt64(protection.rawValue))
        if result < 0 { throw PlatformError(.inject, errno: Int32(-result), detail: "mprotect") }
    }

    /// One change of `apply`.
    public enum Change: Sendable, Equatable {
        case map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection)
        case protect(address: UInt64, length: UInt64, protection: Protection)
    }

    /// Applies `changes` in order, as `map` and `protect` would, up to
    /// `StubThread.batchCapacity` of them in one stop of the stub instead of
    /// a stop each. Returns how many were applied before one failed, and
    /// that failure (nil when all were); none is applied when one is invalid.
    public func apply(_ changes: [Change]) -> (applied: Int, failure: PlatformError?) {
        var entries: [StubThread.BatchEntry] = []
        entries.reserveCapacity(changes.count)
        for change in changes {
            do throws(PlatformError) {
                entries.append(try batchEntry(change))
            } catch {
                return (0, error)
            }
        }
        var applied = 0
        while applied < entries.count {
            // A failure names its call by address: no address twice in one stop.
            var end = applied + 1
            while end < entries.count, end - applied < StubThread.batchCapacity,
                  !entries[applied..<end].contains(where: { $0.address == entries[end].address }) {
                end += 1
            }
            let chunk = entries[applied..<end]
            let outcome: Int64
            do throws(PlatformError) {
                outcome = try onCallersThread { thread throws(PlatformError) in
                    guard let failed = try thread.injectBatch(chunk) else { return 0 }
                    let index = chunk.firstIndex { $0.address == failed.address }.map { $0 - chunk.startIndex } ?? 0
                    let errno = failed.result < 0 && failed.result >= -4095 ? -failed.result : Int64(EPROTO)
                    return Int64(index + 1) << 16 | errno
                }
            } catch {
                return (applied, error)
            }
            // 0: all done; else (index of the failed call + 1) << 16 | its errno.
            if outcome != 0 {
                let index = Int(truncatingIfNeeded: outcome >> 16) - 1
                let errno = Int32(truncatingIfNeeded: outcome & 0xffff)
                return (applied + index, PlatformError(.inject, errno: errno, detail: "batched mmap or mprotect"))
            }
            applied = end
        }
        return (applied, nil)
    }

    /// `change` as the stub's batch site reads it, checked as `map` and
    /// `protect` check their arguments.
    private func batchEntry(_ change: Change) throws(PlatformError) -> StubThread.BatchEntry {
        let protectionBits = UInt64(PROT_READ | PROT_WRITE | PROT_EXEC)
        switch change {
        case .map(let address, let length, let fileOffset, let protection):
            try checkRange(address, length)
            if fileOffset % pageSize != 0 {
                throw PlatformError(.validate, errno: EINVAL, detail: "file offset \(fileOffset) not page aligned")
            }
            guard let bits = UInt64(exactly: protection.rawValue), bits & ~protectionBits == 0 else {
                throw PlatformError(.validate, errno: EINVAL, detail: "protection \(protection.rawValue)")
            }
            return (address, length | bits, fileOffset)
        case .protect(let address, let length, let protection):
            try checkRange(address, length)
            guard let bits = UInt64(exactly: protection.rawValue), bits & ~protectionBits == 0 else {
                throw PlatformError(.validate, errno: EINVAL, detail: "protection \(protection.rawValue)")
            }
            return (address, length | bits | CSHIM_STUB_BATCH_PROTECT, 0)
        }
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
        try onCallersThread { thread throws(PlatformError) in try thread.inject(number, args) }
    }

    /// Runs `body` on the calling thread's own stub thread, or on the
    /// owner's first thread when the caller traces none.
    @discardableResult
    private func onCallersThread(
        _ body: @escaping @Sendable (StubThread) throws(PlatformError) -> Int64
    ) throws(PlatformError) -> Int64 {
        let caller = cshim_current_tid()
        let (own, released) = state.withLock { ($0.threads[caller], $0.released) }
        if released { throw PlatformError(.ownership, errno: ESRCH, detail: "stub \(pid) was released") }
        if let own { return try body(own) }
        return try owner.perform(body)
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

/// The TID of a stub thread cloned ahead for a joiner, taken once.
private final class ReadyThread: Sendable {
    /// 0: none (never cloned, or taken).
    private let tid = Atomic<Int32>(0)

    func offer(_ thread: Int32) {
        tid.store(thread, ordering: .releasing)
    }

    func take() -> Int32? {
        let taken = tid.exchange(0, ordering: .acquiring)
        return taken == 0 ? nil : taken
    }
}

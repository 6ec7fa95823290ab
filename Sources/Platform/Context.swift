import CShim
import Glibc
import Synchronization

/// Runs one application thread: one stub thread driven by one dedicated
/// Sentry thread (a real pthread such as `DedicatedThread`, never Swift's
/// cooperative pool, whose jobs hop between threads).
///
/// Threading: a `Context` is created on, and used only from, the thread
/// that traces its stub thread: creating it makes a new thread in the
/// address space's stub (the address space's owner clones it) and the
/// calling thread seizes it. Other threads get an `Interrupter` to kick it.
/// `release()` ends the stub thread; the tracer must call it before it ends
/// itself (PTRACE_O_EXITKILL would kill the whole stub).
///
/// The stub thread runs on its driving thread's CPU: a wake-up across CPUs
/// costs tens of microseconds on VMs, ten times a same-CPU switch. Both start
/// pinned to one CPU (`CPUPlacement`); from the first switch on the stub
/// thread alone is, and follows the driving thread when the host moves that.
public final class Context {
    public let addressSpace: AddressSpace
    /// The CPU the stub thread is pinned to (its driving thread's at the
    /// last switch), nil if pinning failed.
    public private(set) var cpu: Int32?
    /// Switches since the driving thread was let go (`CPUPlacement.follow`).
    private var unpinnedStreak = 0
    private let thread: StubThread
    /// The FP state currently loaded in the stub thread, valid when
    /// `floatingPointCacheValid`: a switch writes FP only when it differs.
    private var floatingPointCache: [UInt8] = []
    private var floatingPointCacheValid = false
    /// Whether the application ran in the stub thread yet: a new thread
    /// holds the stub's own FP state, which a first write replaces whole
    /// without reading it first.
    private var hasRun = false
    /// The registers the stub thread holds, as read at its last stop, and the
    /// thread's `injections` count then: while no injected call has run
    /// since, a switch writes only what changed (after most syscalls, rax).
    private var heldRegisters: user_regs_struct?
    private var heldInjections: UInt64 = 0

    /// Makes a new stub thread in `addressSpace`, traced by the calling
    /// thread, and places both on one CPU.
    public init(addressSpace: AddressSpace) throws(PlatformError) {
        self.addressSpace = addressSpace
        // Placed before it is seized: a seize waits until the thread has
        // run (to its stop), which on a busy CPU took up to half a millisecond.
        var cpu: Int32?
        thread = try addressSpace.joinThread { tid in cpu = CPUPlacement.place(stubThread: tid) }
        self.cpu = cpu
    }

    /// Ends the stub thread (the application thread's exit, or an exec that
    /// leaves this address space). The other stub threads run on.
    public func release() {
        addressSpace.leaveThread(thread)
    }

    /// A handle any thread may use to kick this context out of the application.
    public var interrupter: Interrupter { Interrupter(pid: thread.pid, tid: thread.tid) }

    /// The stub thread's host TID (diagnostics and tests).
    public var stubThreadID: Int32 { thread.tid }

    /// Runs the application with `registers` and `floatingPoint` until it
    /// makes a syscall, faults, is interrupted or dies; then both hold the
    /// thread's state at that stop (unchanged for `.died`). FP is written to
    /// the host only when it differs from what the stub thread holds.
    public func switchToApp(registers: inout Registers, floatingPoint: inout FloatingPointState) throws(PlatformError) -> StopReason {
        try thread.checkTracer()
        if thread.swallowedInterrupt.exchange(false, ordering: .relaxed) { return .interrupted }
        do throws(PlatformError) {
            try loadFloatingPoint(floatingPoint)
            switch try run(&registers) {
            case .gone(let reason):
                return reason
            case .stopped(let status):
                try storeFloatingPoint(into: &floatingPoint)
                return try classify(status, registers)
            }
        } catch where error.errno == ESRCH {
            return try collectDeath()
        }
    }

    /// Like `switchToApp(registers:floatingPoint:)` but leaves FP state in
    /// the stub thread: cheaper when the Sentry does not need it at this
    /// stop. Read it later with `floatingPointState()`.
    public func switchToApp(registers: inout Registers) throws(PlatformError) -> StopReason {
        try thread.checkTracer()
        if thread.swallowedInterrupt.exchange(false, ordering: .relaxed) { return .interrupted }
        floatingPointCacheValid = false
        do throws(PlatformError) {
            switch try run(&registers) {
            case .gone(let reason): return reason
            case .stopped(let status): return try classify(status, registers)
            }
        } catch where error.errno == ESRCH {
            return try collectDeath()
        }
    }

    /// Reads the FP state of the stopped stub thread (from the host only
    /// when it was not read or written since the thread last ran).
    public func floatingPointState() throws(PlatformError) -> FloatingPointState {
        try thread.checkTracer()
        if !floatingPointCacheValid { try refreshFloatingPointCache() }
        var state = FloatingPointState(bytes: [])
        copyFloatingPointCache(into: &state)
        return state
    }

    /// Reads the FP state from the host whatever the cache holds (tests
    /// check with it what the host was given).
    func floatingPointStateFromHost() throws(PlatformError) -> FloatingPointState {
        try thread.checkTracer()
        var state = FloatingPointState(bytes: [])
        try storeFloatingPoint(into: &state)
        return state
    }

    /// Sets the FP state the stub thread runs with next.
    public func setFloatingPointState(_ state: FloatingPointState) throws(PlatformError) {
        try thread.checkTracer()
        try loadFloatingPoint(state)
    }

    private enum Outcome {
        /// Stopped with this wait status; `registers` hold the stop's state.
        case stopped(Int32)
        case gone(StopReason)
    }

    /// One SYSEMU round trip: set registers, resume, wait, read registers.
    /// ESRCH from a ptrace call means the thread died; callers collect it.
    private func run(_ registers: inout Registers) throws(PlatformError) -> Outcome {
        let tid = thread.tid
        hasRun = true
        cpu = CPUPlacement.follow(stubThread: tid, pinned: cpu, streak: &unpinnedStreak)
        // Selectors come from the stub: the application cannot choose them.
        registers.cs = thread.initialRegisters.cs
        registers.ss = thread.initialRegisters.ss
        registers.ds = thread.initialRegisters.ds
        registers.es = thread.initialRegisters.es
        registers.fs = thread.initialRegisters.fs
        registers.gs = thread.initialRegisters.gs
        var host = registers.host
        try writeRegisters(&host)
        heldRegisters = nil
        var status: Int32 = 0
        repeat {
            try PlatformError.check(cshim_ptrace_sysemu(tid), .resume)
            let result = cshim_wait_thread(tid, &status)
            if result == -ECHILD { return .gone(.died(.reaped)) }
            try PlatformError.check(result, .wait)
            if cshim_status_stopped(status) == 0 { return .gone(.died(Self.exitStatus(status))) }
            // A stub thread cloned while its stub was still in the group
            // stop it made itself joined that stop and reports it when first
            // resumed; it changes nothing, so the thread is resumed again.
        } while cshim_status_group_stop(status) != 0
        try PlatformError.check(cshim_ptrace_get_regs(tid, &host), .getRegisters)
        registers = Registers(host)
        heldRegisters = host
        heldInjections = thread.injections.load(ordering: .relaxed)
        return .stopped(status)
    }

    /// Gives the stopped thread `host`: all registers, or only rax (or
    /// nothing) when the thread holds the others already.
    private func writeRegisters(_ host: inout user_regs_struct) throws(PlatformError) {
        let tid = thread.tid
        if var held = heldRegisters, heldInjections == thread.injections.load(ordering: .relaxed),
           cshim_regs_equal_but_rax(&host, &held) != 0 {
            if host.rax != held.rax { try PlatformError.check(cshim_ptrace_set_rax(tid, host.rax), .setRegisters) }
            return
        }
        try PlatformError.check(cshim_ptrace_set_regs(tid, &host), .setRegisters)
    }

    private func classify(_ status: Int32, _ registers: Registers) throws(PlatformError) -> StopReason {
        if cshim_status_event(status) != 0 { return .interrupted }
        let signal = cshim_status_stop_signal(status)
        if signal == SIGTRAP | 0x80 { return .syscall(number: registers.syscallNumber) }
        if signal == CSHIM_STUB_INTERRUPT_SIGNAL { return .interrupted }
        switch signal {
        case SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP:
            var signo: Int32 = 0
            var code: Int32 = 0
            var address: UInt64 = 0
            try PlatformError.check(cshim_ptrace_get_fault(thread.tid, &signo, &code, &address), .getSignalInfo)
            // si_code > 0 means the kernel raised it for an instruction; <= 0
            // means someone sent it (kill, tgkill), which is no fault.
            if code > 0 { return .fault(Fault(signal: signo, code: code, address: address)) }
            return .interrupted
        default:
            // Any other host signal is suppressed (we resume with signal 0);
            // the Sentry just looks at its own state again.
            return .interrupted
        }
    }

    /// The stub thread vanished under a ptrace call: collect how it ended.
    private func collectDeath() throws(PlatformError) -> StopReason {
        var status: Int32 = 0
        let result = cshim_wait_thread(thread.tid, &status)
        if result == -ECHILD { return .died(.reaped) }
        try PlatformError.check(result, .wait)
        if cshim_status_stopped(status) != 0 {
            throw PlatformError(.wait, errno: EPROTO, detail: "stub thread \(thread.tid) stopped after ESRCH")
        }
        return .died(Self.exitStatus(status))
    }

    private static func exitStatus(_ status: Int32) -> ExitStatus {
        if cshim_status_exited(status) != 0 { return .exited(code: cshim_status_exit_code(status)) }
        return .killed(signal: cshim_status_term_signal(status))
    }

    /// Writes `state` to the stub thread unless it holds it already. When
    /// only the legacy FXSAVE region differs (a handler's initial state
    /// replacing an SSE-only one, an rt_sigreturn after a handler that used
    /// SSE), PTRACE_SETFPREGS writes just that region, with the same result
    /// as the full write. A stale cache is refreshed first once the
    /// application has run (a new thread's state is replaced whole): the
    /// host allocates and maps a buffer for every full NT_X86_XSTATE write
    /// (3.1 us here, against 1.7 for the read and 0.9 for the legacy write),
    /// and an rt_sigreturn after a handler that left the FP state alone
    /// needs none.
    private func loadFloatingPoint(_ state: FloatingPointState) throws(PlatformError) {
        if !floatingPointCacheValid && hasRun { try refreshFloatingPointCache() }
        if floatingPointCacheValid && Self.sameState(state.bytes, floatingPointCache) { return }
        let tid = thread.tid
        let result: Int32
        let legacyOnly = legacyRegionSuffices(state)
        floatingPointCacheValid = false
        if legacyOnly {
            result = state.bytes.withUnsafeBytes { raw in cshim_ptrace_set_fxsave(tid, raw.baseAddress) }
        } else {
            result = state.bytes.withUnsafeBytes { raw in
                cshim_ptrace_set_xstate(tid, raw.baseAddress, raw.count)
            }
        }
        try PlatformError.check(result, .setFloatingPoint)
        Self.copy(state.bytes, into: &floatingPointCache)
        floatingPointCacheValid = true
    }

    /// Whether writing `state`'s legacy region gives the thread all of
    /// `state`: the host keeps the XSAVE header and the other components
    /// and ORs x87|SSE into XSTATE_BV, so `state` must have both bits and
    /// the thread must hold the same header and components (the cache says
    /// so), its own x87 and SSE bits aside: the OR sets them (a thread whose
    /// x87 state is in its initial state, as after a syscall, has that bit
    /// clear, and a handler's initial state sets it).
    private func legacyRegionSuffices(_ state: FloatingPointState) -> Bool {
        let legacy = FloatingPointState.legacySize
        let bytes = state.bytes
        guard floatingPointCacheValid, bytes.count >= legacy + FloatingPointState.headerSize,
              bytes.count == floatingPointCache.count else { return false }
        let features = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: legacy, as: UInt64.self) }
        let held = floatingPointCache.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: legacy, as: UInt64.self) }
        let legacyFeatures = FloatingPointState.legacyFeatures
        guard features & legacyFeatures == legacyFeatures,
              features & ~legacyFeatures == held & ~legacyFeatures else { return false }
        let rest = legacy + MemoryLayout<UInt64>.size
        return bytes.withUnsafeBytes { x in
            floatingPointCache.withUnsafeBytes { y in
                guard let xs = x.baseAddress, let ys = y.baseAddress else { return false }
                return memcmp(xs + rest, ys + rest, x.count - rest) == 0
            }
        }
    }

    /// Reads the stub thread's FP state into `state` (and the cache).
    private func storeFloatingPoint(into state: inout FloatingPointState) throws(PlatformError) {
        try refreshFloatingPointCache()
        copyFloatingPointCache(into: &state)
    }

    /// A copy of our own (no shared storage), so neither side's next write
    /// forces a copy-on-write allocation.
    private func copyFloatingPointCache(into state: inout FloatingPointState) {
        Self.copy(floatingPointCache, into: &state.bytes)
    }

    private static func copy(_ source: [UInt8], into target: inout [UInt8]) {
        if target.count != source.count { target = [UInt8](repeating: 0, count: source.count) }
        target.withUnsafeMutableBytes { target in
            source.withUnsafeBytes { source in
                target.copyMemory(from: source)
            }
        }
    }

    /// Reads the stub thread's FP state into the cache.
    private func refreshFloatingPointCache() throws(PlatformError) {
        if floatingPointCache.count != FloatingPointState.hostSize {
            floatingPointCache = [UInt8](repeating: 0, count: FloatingPointState.hostSize)
        }
        let tid = thread.tid
        var length = 0
        let result = floatingPointCache.withUnsafeMutableBytes { raw -> Int32 in
            length = raw.count
            return cshim_ptrace_get_xstate(tid, raw.baseAddress, &length)
        }
        floatingPointCacheValid = false
        try PlatformError.check(result, .getFloatingPoint)
        if length < floatingPointCache.count { floatingPointCache.removeLast(floatingPointCache.count - length) }
        floatingPointCacheValid = true
    }

    /// Whether `a` and `b` are one state: equal but for the legacy
    /// region's software-reserved bytes, which XRSTOR ignores (the host
    /// fills them in what it reports; a state from a signal frame has them
    /// cleared), and for XSTATE_BV bits of components whose bytes hold
    /// their initial values: a clear bit means that state (the host reports
    /// initial bytes for it), and Linux sets x87 and SSE in every frame.
    private static func sameState(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        let reserved = FloatingPointState.softwareReservedRange
        let features = FloatingPointState.legacySize
        guard a.count >= features + MemoryLayout<UInt64>.size else { return a == b }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                guard let xs = x.baseAddress, let ys = y.baseAddress else { return true }
                if xs == ys { return true }
                let after = features + MemoryLayout<UInt64>.size
                guard memcmp(xs, ys, reserved.lowerBound) == 0,
                      memcmp(xs + after, ys + after, x.count - after) == 0 else { return false }
                let differing = x.loadUnaligned(fromByteOffset: features, as: UInt64.self)
                    ^ y.loadUnaligned(fromByteOffset: features, as: UInt64.self)
                return FloatingPointState.componentsAreInitial(differing, in: x)
            }
        }
    }
}

/// Kicks a running application thread back to its Sentry thread, which sees
/// `.interrupted` (now, or at its next switch if it is not in the app). Any
/// thread may use it; kicks coalesce.
public struct Interrupter: Sendable, Hashable {
    public let pid: Int32
    public let tid: Int32

    public func interrupt() {
        // ESRCH: the stub is gone; its Context reports `.died` instead.
        _ = cshim_tgkill(pid, tid, CSHIM_STUB_INTERRUPT_SIGNAL)
    }
}

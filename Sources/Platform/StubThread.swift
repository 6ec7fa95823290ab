import CShim
import Synchronization

/// One traced thread of a stub process and the Sentry thread that traces it.
/// ptrace accepts requests for a tracee only from its tracer thread, so every
/// ptrace call here checks that the caller is `tracer`.
final class StubThread: Sendable {
    let pid: Int32
    let tid: Int32
    /// The kernel TID of the Sentry thread that is this thread's tracer.
    let tracer: Int32
    /// Registers the stub had when attached: the template for injected calls
    /// (valid selectors and flags).
    let initialRegisters: Registers
    /// Set when an injected call swallowed an interrupt signal, so the next
    /// switch reports `.interrupted` instead of losing the kick.
    let swallowedInterrupt = Atomic<Bool>(false)
    /// How many injected calls have run: each clobbers the registers, so a
    /// `Context` knows the registers it read last are no longer the thread's.
    let injections = Atomic<UInt64>(0)

    private init(pid: Int32, tid: Int32, tracer: Int32, initialRegisters: Registers) {
        self.pid = pid
        self.tid = tid
        self.tracer = tracer
        self.initialRegisters = initialRegisters
    }

    /// Makes the calling thread the tracer of `tid`, which must be in
    /// group-stop (as a new or pooled stub is), with the trace options, and
    /// waits for its stop. PTRACE_SEIZE queues no SIGSTOP
    /// (PTRACE_ATTACH's cost the first injected call a stop of its own); a
    /// stub let go with SIGSTOP that has not reached its group-stop yet
    /// reports that signal's stop instead, which the first injected call
    /// resumes from as from any stop, suppressing the signal.
    static func attach(pid: Int32, tid: Int32) throws(PlatformError) -> StubThread {
        try PlatformError.check(cshim_ptrace_seize_stopped(tid), .attach)
        var status: Int32 = 0
        try PlatformError.check(cshim_wait_thread(tid, &status), .attach)
        if cshim_status_stopped(status) == 0 {
            throw PlatformError(.attach, errno: ESRCH, detail: "stub exited while attaching (status \(status))")
        }
        var regs = user_regs_struct()
        try PlatformError.check(cshim_ptrace_get_regs(tid, &regs), .getRegisters)
        return StubThread(pid: pid, tid: tid, tracer: cshim_current_tid(), initialRegisters: Registers(regs))
    }

    func checkTracer() throws(PlatformError) {
        let caller = cshim_current_tid()
        if caller != tracer {
            throw PlatformError(.ownership, errno: EPERM,
                                detail: "stub thread \(tid) is traced by thread \(tracer), called from \(caller)")
        }
    }

    /// Runs one system call in the stub on its `syscall; int3` pair and
    /// returns the raw result (-errno on failure). The thread must be
    /// stopped; its registers are left clobbered, and the call counts in
    /// `injections`, which tells a `Context` to write all registers on its
    /// next switch instead of only rax (`Context.heldRegisters`).
    func inject(_ number: Int, _ args: UInt64...) throws(PlatformError) -> Int64 {
        try inject(number, args)
    }

    func inject(_ number: Int, _ args: [UInt64]) throws(PlatformError) -> Int64 {
        try inject(number, args, at: cshim_stub_syscall_address(), trap: cshim_stub_syscall_address() + 3)
    }

    /// One entry of `injectBatch`: (address, length | op, file offset), as
    /// the stub's batch site reads them (`cshim_stub_code_batch`).
    typealias BatchEntry = (address: UInt64, word: UInt64, offset: UInt64)

    /// The most entries one stop of the batch site runs.
    static let batchCapacity = 3

    /// Runs up to `batchCapacity` MemoryFile mmaps or mprotects in one stop,
    /// in order, their arguments in registers only. Nil when all succeeded,
    /// else the address of the one that failed (the ones before it are done,
    /// the ones after it not) and its raw result (-errno). Counts as one
    /// injected call (`injections`).
    func injectBatch(_ entries: ArraySlice<BatchEntry>) throws(PlatformError) -> (address: UInt64, result: Int64)? {
        try checkTracer()
        guard !entries.isEmpty, entries.count <= Self.batchCapacity else {
            throw PlatformError(.validate, errno: EINVAL, detail: "a batch of \(entries.count) calls")
        }
        var regs = initialRegisters
        regs.rip = cshim_stub_batch_address()
        regs.origRax = UInt64(bitPattern: -1)
        let slots: [(WritableKeyPath<Registers, UInt64>, WritableKeyPath<Registers, UInt64>, WritableKeyPath<Registers, UInt64>)] =
            [(\.rdi, \.rsi, \.rdx), (\.rbx, \.rbp, \.r12), (\.r13, \.r14, \.r15)]
        for (index, slot) in slots.enumerated() {
            let entry = index < entries.count ? entries[entries.startIndex + index] : (0, 0, 0)
            regs[keyPath: slot.0] = entry.0
            regs[keyPath: slot.1] = entry.1
            regs[keyPath: slot.2] = entry.2
        }
        injections.add(1, ordering: .relaxed)
        var host = regs.host
        try PlatformError.check(cshim_ptrace_set_regs(tid, &host), .inject)
        let done = cshim_stub_batch_done_address()
        let stop = try runToTrap(Int(SYS_mmap), traps: [done, cshim_stub_batch_failed_address()])
        if UInt64(stop.rip) == done { return nil }
        return (UInt64(stop.rdi), Int64(bitPattern: UInt64(stop.rax)))
    }

    /// Makes a new thread of the stub's process (on the stub's clone site)
    /// and returns its TID. The new thread waits in pause(), traced by
    /// nobody, until a tracer `seize`s it.
    func cloneThread() throws(PlatformError) -> Int32 {
        let result = try inject(Int(SYS_clone), [cshim_stub_thread_clone_flags(), 0, 0, 0, 0],
                                at: cshim_stub_clone_address(), trap: cshim_stub_clone_trap_address())
        guard result > 0, let tid = Int32(exactly: result) else {
            throw PlatformError(.createStub, errno: result < 0 ? Int32(truncatingIfNeeded: -result) : EPROTO,
                                detail: "clone of a stub thread returned \(result)")
        }
        return tid
    }

    /// Seizes `tid`, a thread of stub `pid` that `cloneThread` made, from the
    /// calling thread, which becomes its tracer. PTRACE_SEIZE sends no
    /// SIGSTOP (which would stop every thread of the stub); PTRACE_INTERRUPT
    /// stops just this one. Its first injected call or switch is what shows
    /// it runs: a thread that cannot fails that, as a proof call would.
    static func seize(pid: Int32, tid: Int32) throws(PlatformError) -> StubThread {
        try PlatformError.check(cshim_ptrace_seize_and_interrupt(tid), .attach)
        var status: Int32 = 0
        try PlatformError.check(cshim_wait_thread(tid, &status), .attach)
        if cshim_status_stopped(status) == 0 {
            throw PlatformError(.attach, errno: ESRCH, detail: "stub thread \(tid) exited while seized (status \(status))")
        }
        var regs = user_regs_struct()
        try PlatformError.check(cshim_ptrace_get_regs(tid, &regs), .getRegisters)
        return StubThread(pid: pid, tid: tid, tracer: cshim_current_tid(), initialRegisters: Registers(regs))
    }

    /// Ends this stub thread (exit(2), the thread alone) and collects it.
    /// The tracer must do this before it ends itself: PTRACE_O_EXITKILL
    /// would otherwise kill the whole stub with it.
    func exitThread() throws(PlatformError) {
        try checkTracer()
        var regs = initialRegisters
        regs.rip = cshim_stub_syscall_address()
        regs.rax = UInt64(SYS_exit)
        regs.rdi = 0
        regs.origRax = UInt64(bitPattern: -1)
        var host = regs.host
        // ESRCH: it died already (the stub was killed); collect it below.
        if cshim_ptrace_set_regs(tid, &host) == 0 { _ = cshim_ptrace_cont(tid) }
        collectExit()
    }

    /// Waits until this thread has exited (it was told to, or killed) and
    /// reaps it; stops on the way out are let go on.
    func collectExit() {
        while true {
            var status: Int32 = 0
            if cshim_wait_thread(tid, &status) < 0 { return }
            if cshim_status_exited(status) != 0 || cshim_status_signaled(status) != 0 { return }
            _ = cshim_ptrace_cont(tid)
        }
    }

    private func inject(_ number: Int, _ args: [UInt64], at site: UInt64, trap: UInt64) throws(PlatformError) -> Int64 {
        try checkTracer()
        var regs = initialRegisters
        regs.rip = site
        regs.rax = UInt64(number)
        regs.origRax = UInt64(bitPattern: -1)
        let slots: [WritableKeyPath<Registers, UInt64>] = [\.rdi, \.rsi, \.rdx, \.r10, \.r8, \.r9]
        for (slot, value) in zip(slots, args) { regs[keyPath: slot] = value }
        injections.add(1, ordering: .relaxed)
        while true {
            var host = regs.host
            try PlatformError.check(cshim_ptrace_set_regs(tid, &host), .inject)
            let result = Int64(bitPattern: UInt64(try runToTrap(number, traps: [trap]).rax))
            // An interrupt signal arriving mid-call can make the kernel ask for
            // a restart; the call has not happened, so run it again.
            if (-516 ... -512).contains(result) { continue }
            return result
        }
    }

    /// Continues the thread until it traps at one of `traps` after the
    /// stub's syscall and returns its registers there, swallowing signals
    /// that arrive meanwhile. `number` is the injected call, for the message
    /// when the stub's seccomp filter kills it.
    private func runToTrap(_ number: Int, traps: [UInt64]) throws(PlatformError) -> user_regs_struct {
        while true {
            try PlatformError.check(cshim_ptrace_cont(tid), .inject)
            var status: Int32 = 0
            try PlatformError.check(cshim_wait_thread(tid, &status), .inject)
            if cshim_status_signaled(status) != 0 && cshim_status_term_signal(status) == SIGSYS {
                throw PlatformError(.inject, errno: ESRCH,
                                    detail: "stub killed by its seccomp filter (SIGSYS) on injected syscall \(number)")
            }
            if cshim_status_stopped(status) == 0 {
                throw PlatformError(.inject, errno: ESRCH, detail: "stub died during an injected call (status \(status))")
            }
            let signal = cshim_status_stop_signal(status)
            if signal == CSHIM_STUB_INTERRUPT_SIGNAL {
                swallowedInterrupt.store(true, ordering: .relaxed)
            }
            guard cshim_status_event(status) == 0 else { continue }
            var regs = user_regs_struct()
            try PlatformError.check(cshim_ptrace_get_regs(tid, &regs), .inject)
            if signal == SIGTRAP && traps.contains(UInt64(regs.rip)) { return regs }
            try failOnFault(signal, rip: UInt64(regs.rip))
        }
    }

    /// A fault while running our own stub code means the stub is broken;
    /// suppressing it would only re-run the faulting instruction forever.
    private func failOnFault(_ signal: Int32, rip: UInt64) throws(PlatformError) {
        switch signal {
        case SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP:
            var signo: Int32 = 0
            var code: Int32 = 0
            var address: UInt64 = 0
            try PlatformError.check(cshim_ptrace_get_fault(tid, &signo, &code, &address), .getSignalInfo)
            if code > 0 {
                throw PlatformError(.inject, errno: EFAULT,
                                    detail: "stub faulted: signal \(signo) code \(code) address \(address) rip \(rip)")
            }
        default:
            return
        }
    }
}

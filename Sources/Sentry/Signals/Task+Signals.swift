import Glibc
import Platform
import State

/// Signal generation: Linux's send_signal_locked. Lock order: a group's
/// `lock` may be held while taking its `SignalHandlers` lock, never the
/// reverse; the tasks' signal masks and pending queues are guarded by their
/// group's `lock`.
extension ThreadGroup {
    /// Queues `info` for the group (`target` nil: any thread not blocking it
    /// takes it) or for one of its tasks, and kicks a thread that can take it.
    /// An ignored signal is dropped unless blocked (its handler may change
    /// before it is unblocked: sig_ignored); a standard signal already pending
    /// coalesces; a real-time one past RLIMIT_SIGPENDING fails with EAGAIN
    /// unless kill(2) sent it (then it is pending without its siginfo).
    /// A `sender` that takes the signal itself is not kicked: it is in the
    /// Sentry and delivers it on its way back to the application.
    func send(_ info: SignalInfo, to target: Task? = nil, from sender: Task? = nil) throws(SyscallError) {
        let signal = info.signal
        guard signal.isValid else { return }
        if signal == .kill {
            beginExit(killedBy: .kill)
            return
        }
        var continued = false
        defer { if continued { self.continued() } }
        let wake = try lock.withLock { _ throws(SyscallError) -> Task? in
            guard exitReason == nil, let receiver = target ?? tasks.first else { return nil }
            continued = prepareJobControlLocked(signal)
            if !receiver.signalMask.contains(signal) && signalHandlers.action(for: signal).ignores(signal) {
                return nil
            }
            let queued = target?.pendingSignals ?? sharedPendingSignals
            if queued.coalesces(signal) { return nil }
            // A timer's siginfo was reserved at timer_create.
            let overridesLimit = (signal.rawValue < LinuxSignal.SIGRTMIN && info.code >= 0) || info.isTimerSignal
            let keepInfo = overridesLimit || UInt64(queuedSignalInfoCountLocked) < storedLimits[.sigpending].soft
            if !keepInfo && signal.rawValue >= LinuxSignal.SIGRTMIN && info.code != LinuxSignal.SI_USER {
                throw .eagain
            }
            if let target {
                target.pendingSignals.enqueue(info, keepInfo: keepInfo)
                return target.signalMask.contains(signal) ? nil : target
            }
            sharedPendingSignals.enqueue(info, keepInfo: keepInfo)
            return tasks.first { !$0.signalMask.contains(signal) }
        }
        kernel?.signalWaiters.notify(.readable)
        if let wake, wake !== sender { wake.interrupt() }
    }

    /// Sends `signal` from outside the container (runsc kill, a forwarded
    /// Ctrl-C): SI_USER from PID 0, as Linux shows a sender in an ancestor
    /// namespace.
    public func kill(with signal: Signal) {
        try? send(SignalInfo(signal: signal, code: LinuxSignal.SI_USER, senderPID: 0, senderUID: 0))
    }

    /// Every siginfo queued in the group, what RLIMIT_SIGPENDING bounds.
    /// Linux counts per user; a container has one process per user for now.
    var queuedSignalInfoCountLocked: Int {
        tasks.reduce(sharedPendingSignals.entries.count + timerSignalReservationsLocked) { $0 + $1.pendingSignals.entries.count }
    }

    /// Drops pending instances of `signal` everywhere (its handler became SIG_IGN).
    func flushPendingLocked(_ signal: Signal) {
        flushPendingLocked(SignalSet(rawValue: signal.mask))
    }

    /// Drops pending instances of the signals in `set` everywhere.
    func flushPendingLocked(_ set: SignalSet) {
        sharedPendingSignals.flush(set)
        for task in tasks { task.pendingSignals.flush(set) }
    }
}

extension SignalAction {
    /// sig_handler_ignored: SIG_IGN, or SIG_DFL for a signal whose default is to ignore.
    func ignores(_ signal: Signal) -> Bool {
        handler == SignalAction.ignoreHandler || (handler == SignalAction.defaultHandler && signal.defaultIgnored)
    }

    var hasHandler: Bool { handler != SignalAction.defaultHandler && handler != SignalAction.ignoreHandler }
}

/// Dequeueing, the return to user mode, frames and rt_sigreturn.
extension Task {
    /// Sets the blocked mask (SIGKILL and SIGSTOP are never blocked). What it
    /// unblocks is delivered at the return to user mode; until then a wait
    /// the task starts ends at once (recalc_sigpending's TIF_SIGPENDING), so
    /// ppoll or pselect6 unblocking a pending signal return EINTR for it.
    func setSignalMask(_ mask: SignalSet) {
        let unblockable = SignalSet.unblockable.rawValue
        guard let group = threadGroup else {
            signalMask = SignalSet(rawValue: mask.rawValue & ~unblockable)
            return
        }
        let unblocksPending = group.lock.withLock { _ -> Bool in
            let wasBlocked = signalMask.rawValue
            signalMask = SignalSet(rawValue: mask.rawValue & ~unblockable)
            let pending = pendingSignals.pending.rawValue | group.sharedPendingSignals.pending.rawValue
            return pending & wasBlocked & ~signalMask.rawValue != 0
        }
        if unblocksPending { interruptWaits() }
    }

    /// Runs `body` with `mask` blocked (set_user_sigmask: sigsuspend, ppoll,
    /// pselect6). The task's own mask comes back as the call returns, unless
    /// a signal interrupted it: then it stays saved until the handler has run
    /// (restore_saved_sigmask_unless), so the handler runs under the
    /// temporary mask; `returnToUser` puts it back when no handler runs.
    func withTemporarySignalMask(_ mask: SignalSet,
                                 _ body: () throws(SyscallError) -> Int64) throws(SyscallError) -> Int64 {
        let saved = signalMask
        savedSignalMask = saved
        setSignalMask(mask)
        do {
            let result = try body()
            savedSignalMask = nil
            setSignalMask(saved)
            return result
        } catch {
            if error != .eintr && !error.isRestartCode {
                savedSignalMask = nil
                setSignalMask(saved)
            }
            throw error
        }
    }

    /// `withTemporarySignalMask` with the sigset the application passed at
    /// `address` (ppoll, pselect6, epoll_pwait): none when the address is 0,
    /// EINVAL unless `size` is the kernel's sigset size.
    func withTemporarySignalMask(at address: UInt64, size: UInt64,
                                 _ body: () throws(SyscallError) -> Int64) throws(SyscallError) -> Int64 {
        guard address != 0 else { return try body() }
        guard size == LinuxSignal.sigsetSize else { throw .einval }
        let mask = try copyIn(UInt64.self, from: address)
        return try withTemporarySignalMask(SignalSet(rawValue: mask), body)
    }

    /// Signals pending for this task or its group and not blocked
    /// (Linux's TIF_SIGPENDING, what ends pause and sigsuspend).
    var hasDeliverableSignal: Bool {
        guard let group = threadGroup else { return false }
        return group.lock.withLock { _ in
            (pendingSignals.pending.rawValue | group.sharedPendingSignals.pending.rawValue) & ~signalMask.rawValue != 0
        }
    }

    /// Whether what ended the task's last wait is something the application
    /// sees (Linux's signal_pending: a signal to take, a stop, an exit)
    /// rather than only the checkpoint's pause, which a call outlasts as if
    /// it had not come: a receive gathering MSG_WAITALL and a send in
    /// pieces go on, a timed wait keeps what remained of its timeout.
    var isInterruptedBySignal: Bool {
        hasDeliverableSignal || mustExit || threadGroup?.isStopped == true
    }

    /// The signals pending for this task or its group (rt_sigpending).
    var pendingSignalSet: SignalSet {
        guard let group = threadGroup else { return .empty }
        return group.lock.withLock { _ in
            SignalSet(rawValue: pendingSignals.pending.rawValue | group.sharedPendingSignals.pending.rawValue)
        }
    }

    /// Takes the next signal in neither `blocked` nor ignored, the task's own
    /// queue first (dequeue_signal). A handler with SA_RESETHAND goes back to
    /// SIG_DFL as it is taken.
    func dequeueSignal(blocked: SignalSet) -> (SignalInfo, SignalAction)? {
        guard let group = threadGroup else { return nil }
        let taken = group.lock.withLock { _ -> (SignalInfo, SignalAction)? in
            while let info = takeQueuedLocked(group, blocked: blocked) {
                let action = group.signalHandlers.action(for: info.signal)
                if action.ignores(info.signal) && !info.signal.isUncatchable { continue }
                if action.hasHandler && action.flags & LinuxSignal.SA_RESETHAND != 0 {
                    var reset = action
                    reset.handler = SignalAction.defaultHandler
                    group.signalHandlers.setAction(reset, for: info.signal)
                }
                return (info, action)
            }
            return nil
        }
        if let (info, _) = taken { timerSignalTaken(info) }
        return taken
    }

    /// Takes the signals in `set` only, whatever the mask (rt_sigtimedwait).
    func dequeueSignal(from set: SignalSet) -> SignalInfo? {
        guard let group = threadGroup else { return nil }
        let others = SignalSet(rawValue: ~set.rawValue)
        let taken = group.lock.withLock { _ in takeQueuedLocked(group, blocked: others) }
        if let taken { timerSignalTaken(taken) }
        return taken
    }

    /// The next queued signal not in `blocked`, the task's own queue first;
    /// a timer's signal its timer no longer wants is skipped. Under
    /// `group.lock`; the one place both dequeues take from the queues.
    private func takeQueuedLocked(_ group: ThreadGroup, blocked: SignalSet) -> SignalInfo? {
        while true {
            let queued: SignalInfo
            if let signal = pendingSignals.next(blocked: blocked) {
                queued = pendingSignals.dequeue(signal)
            } else if let signal = group.sharedPendingSignals.next(blocked: blocked) {
                queued = group.sharedPendingSignals.dequeue(signal)
            } else {
                return nil
            }
            if let info = group.takeTimerSignalLocked(queued) { return info }
        }
    }

    /// force_sig_info: a signal the task cannot escape (a fault, a bad
    /// frame). Blocked or ignored, or with `resetHandler`, its handler
    /// becomes SIG_DFL and it is unblocked, so the default action ends the
    /// process instead of a loop on the faulting instruction.
    func forceSignal(_ info: SignalInfo, resetHandler: Bool = false) {
        guard let group = threadGroup else { return }
        group.lock.withLock { _ in
            let signal = info.signal
            var action = group.signalHandlers.action(for: signal)
            let blocked = signalMask.contains(signal)
            if resetHandler || blocked || action.handler == SignalAction.ignoreHandler {
                action.handler = SignalAction.defaultHandler
                group.signalHandlers.setAction(action, for: signal)
                signalMask.rawValue &= ~signal.mask
            }
            if !pendingSignals.coalesces(signal) { pendingSignals.enqueue(info, keepInfo: true) }
        }
    }

    /// The one point where the task goes back to the application (after a
    /// syscall, a fault or an interrupt): loads an FP state rt_sigreturn
    /// restored, settles an interrupted syscall as Linux does (restart, or
    /// EINTR when a handler runs), and delivers every deliverable signal:
    /// a default action ends the process, a handler gets a frame.
    func returnToUser(_ context: Context, afterSyscall: Bool) throws(PlatformError) {
        if floatingPointNeedsLoad {
            floatingPointNeedsLoad = false
            do {
                try context.setFloatingPointState(floatingPoint)
            } catch where error.errno == EINVAL {
                // The host refused what the frame held (an MXCSR bit this
                // CPU lacks): a bad frame, as XRSTOR's fault is on Linux.
                floatingPoint = try context.floatingPointState()
                forceSignal(SignalInfo(signal: .segmentationFault, code: LinuxSignal.SI_KERNEL, senderPID: 0, senderUID: 0))
            }
        }
        if mustExit { return }
        var restart: SyscallError?
        if afterSyscall, Int64(bitPattern: registers.origRax) >= 0,
           let error = SyscallError.restartCode(inReturnValue: registers.rax) {
            restart = error
            waiter.clearInterrupt()
        }
        var handlerRan = false
        while !mustExit {
            if threadGroup?.isStopped == true {
                endKeptCallForStop(&restart)
                try waitWhileStopped(context, restart: &restart)
                // A thrown-away kernel (the save/restore test mode): the run loop ends the task.
                if kernel?.pauseGate.isDiscarded == true { return }
                continue
            }
            guard let (info, action) = dequeueSignal(blocked: signalMask) else { break }
            guard action.hasHandler else {
                if info.signal.defaultStops {
                    endKeptCallForStop(&restart)
                    threadGroup?.beginStop(info.signal, takenBy: self)
                    continue
                }
                threadGroup?.beginExit(killedBy: info.signal)
                return
            }
            if restart == nil, let rewound = rewoundRestart {
                // A syscall rewound before and not re-entered since: the handler ends it.
                registers.rip &+= Task.syscallInstructionSize
                registers.rax = UInt64(bitPattern: rewound.returnValue)
                restart = rewound
            }
            rewoundRestart = nil
            if let error = restart {
                settleRestart(error, handler: action)
                restart = nil
            }
            if try deliver(info, action, context: context) { handlerRan = true }
        }
        if let restart { rewindForRestart(restart) }
        if !handlerRan, let saved = savedSignalMask {
            setSignalMask(saved)
            savedSignalMask = nil
        }
        faultContext = nil
    }

    /// A stop is taken while a call Linux never restarts (semop) was kept by
    /// the checkpoint's pause, just interrupted (`restart`) or rewound for
    /// its re-entry: the call ends with EINTR instead, as a stop during
    /// Linux's wait ends it.
    private func endKeptCallForStop(_ restart: inout SyscallError?) {
        guard keptForRestart.endsOnStop, restart != nil || rewoundRestart != nil else { return }
        if restart == nil {
            registers.rip &+= Task.syscallInstructionSize
            rewoundRestart = nil
        }
        registers.setSyscallReturn(SyscallError.eintr.returnValue)
        restart = nil
        keptForRestart = RestartKeep()
    }

    /// A handler runs for an interrupted syscall (handle_signal): EINTR, or a
    /// restart for ERESTARTSYS under SA_RESTART and for ERESTARTNOINTR.
    private func settleRestart(_ error: SyscallError, handler action: SignalAction) {
        if !keptForRestart.futexWaiters.isEmpty {
            // A futex wait the checkpoint's pause interrupted: a wake that reached it meanwhile stands.
            let kept = keptForRestart.futexWaiters
            keptForRestart.futexWaiters = []
            if let result = kernel?.futexes.settleKept(kept) {
                registers.setSyscallReturn(result)
                return
            }
        }
        if let sent = keptForRestart.written {
            // A write the checkpoint's pause interrupted after some bytes: the signal ends it with them.
            keptForRestart.written = nil
            registers.setSyscallReturn(Int64(sent))
            return
        }
        switch error {
        case .erestartsys where action.flags & LinuxSignal.SA_RESTART != 0, .erestartnointr:
            registers.rax = registers.origRax
            registers.rip &-= Task.syscallInstructionSize
        default:
            registers.setSyscallReturn(SyscallError.eintr.returnValue)
        }
    }

    /// A timed socket wait the checkpoint's pause interrupted keeps what
    /// remained of its timeout (until `hostDeadline`, host CLOCK_MONOTONIC
    /// ns) for its re-entry, on the kernel's CLOCK_MONOTONIC.
    func keepTimeoutForRestart(hostDeadline: Int64) {
        guard let clocks = kernel?.clocks else { return }
        let remaining = max(0, hostDeadline.subtractingReportingOverflow(Clocks.hostNanoseconds(CLOCK_MONOTONIC)).partialValue)
        keptForRestart.timeout = clocks.monotonic().addingReportingOverflow(remaining).partialValue
    }

    /// The host deadline (CLOCK_MONOTONIC ns) of the timeout a re-entered
    /// syscall kept, or nil when it kept none; taken once.
    func takeReenteredTimeout() -> Int64? {
        guard let deadline = reentered.timeout, let clocks = kernel?.clocks else { return nil }
        reentered.timeout = nil
        let remaining = max(0, deadline.subtractingReportingOverflow(clocks.monotonic()).partialValue)
        return Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingReportingOverflow(remaining).partialValue
    }

    /// Whether a blocking write interrupted by `error` after `written`
    /// bytes restarts, keeping them for its re-entry (the checkpoint's
    /// pause), rather than returning them (a signal, a stop, an exit).
    func keepsWritten(_ written: Int, interruptedBy error: SyscallError) -> Bool {
        guard error == .erestartnohand || (error == .erestartsys && !isInterruptedBySignal) else { return false }
        keptForRestart.written = written
        return true
    }

    /// The bytes a write kept for its restart (`keepsWritten`), taken: for a
    /// caller that ends with the count so far instead of restarting (a
    /// sendfile chunk loop, a sendmmsg batch after a message), which must
    /// count them, or the application would send them again.
    func takeKeptWritten() -> Int {
        defer { keptForRestart.written = nil }
        return keptForRestart.written ?? 0
    }

    /// The futex waiters a re-entered call kept through the pause (none if
    /// it kept none); taken once.
    func takeReenteredFutexWait() -> [FutexTable.Waiter] {
        defer { reentered.futexWaiters = [] }
        return reentered.futexWaiters
    }

    /// After a syscall: kept futex waiters that its re-entry did not take
    /// up, and those it kept but then did not restart for (it ended after
    /// all), leave their queues.
    func settleFutexWaits(after result: Int64, kernel: Kernel) {
        if !reentered.futexWaiters.isEmpty {
            dropFutexWaits(reentered.futexWaiters, kernel: kernel)
            reentered.futexWaiters = []
        }
        if !keptForRestart.futexWaiters.isEmpty,
           SyscallError.restartCode(inReturnValue: UInt64(bitPattern: result)) == nil {
            dropFutexWaits(keptForRestart.futexWaiters, kernel: kernel)
            keptForRestart.futexWaiters = []
        }
    }

    /// Takes futex waiters kept for a re-entry that will not come off their queues.
    func dropFutexWaits(_ waiters: [FutexTable.Waiter], kernel: Kernel) {
        if !waiters.isEmpty { kernel.futexes.drop(waiters) }
    }

    /// The bytes a re-entered write had written before the pause, or nil; taken once.
    func takeReenteredWritten() -> Int? {
        defer { reentered.written = nil }
        return reentered.written
    }

    /// The result of a re-entered write that did not take the `sent` bytes
    /// it kept (it failed, or was interrupted again, before writing): an
    /// error gives way to the count, as Linux returns what went before one;
    /// a restart keeps the count for the next re-entry.
    func settleUnclaimedWrite(_ sent: Int, result: Int64) -> Int64 {
        reentered.written = nil
        if SyscallError.restartCode(inReturnValue: UInt64(bitPattern: result)) != nil {
            keptForRestart.written = sent
            return result
        }
        return result < 0 ? Int64(sent) : result
    }

    /// No handler ran: every interrupted syscall restarts, ERESTART_RESTARTBLOCK
    /// through restart_syscall (which resumes `restartBlock`).
    func rewindForRestart(_ error: SyscallError) {
        // The interrupt that ended the call is handled: the restart may block again.
        waiter.clearInterrupt()
        registers.rax = error == .erestartRestartblock ? Task.restartSyscallNumber : registers.origRax
        registers.rip &-= Task.syscallInstructionSize
        rewoundRestart = error
    }

    /// The FP state a handler starts with, made once (a copy per delivery
    /// cost an allocation and the clearing of the whole XSAVE area).
    private static let handlerFloatingPoint = FloatingPointState.initial()

    /// The length of the `syscall` instruction, what a restart rewinds.
    static let syscallInstructionSize: UInt64 = 2

    /// Builds the rt_sigframe for `info` and points the registers at the
    /// handler (x64_setup_rt_frame). A frame that cannot be written (no
    /// SA_RESTORER, a stack that does not fit or is not writable) is a
    /// SIGSEGV with the default action, as Linux's force_sigsegv; returns
    /// whether the handler will run.
    private func deliver(_ info: SignalInfo, _ action: SignalAction, context: Context) throws(PlatformError) -> Bool {
        let fp = try context.floatingPointState()
        guard let frame = buildFrame(info, action, fp: fp) else {
            forceSignal(SignalInfo(signal: .segmentationFault, code: LinuxSignal.SI_KERNEL, senderPID: 0, senderUID: 0),
                        resetHandler: true)
            return false
        }
        registers.rdi = UInt64(bitPattern: Int64(info.signal.rawValue))
        registers.rsi = frame &+ UInt64(MemoryLayout<RawSignalFrame>.offset(of: \.info) ?? 0)
        registers.rdx = frame &+ UInt64(MemoryLayout<RawSignalFrame>.offset(of: \.uc) ?? 0)
        registers.rax = 0
        registers.rip = action.handler
        registers.rsp = frame
        registers.cs = Registers.userCodeSelector
        registers.eflags &= ~(LinuxSignal.X86_EFLAGS_DF | LinuxSignal.X86_EFLAGS_RF | LinuxSignal.X86_EFLAGS_TF)
        // Linux starts the handler with the initial FP state
        // (fpu__clear_user_states). A function may rely only on the control
        // state at its entry; when that already is the initial one, the
        // handler keeps the interrupted code's register contents and no host
        // call is made (nor one at rt_sigreturn when it leaves them alone).
        if fp.controlsAreInitial {
            floatingPoint = fp
        } else {
            floatingPoint = fp.bytes.count == Task.handlerFloatingPoint.bytes.count
                ? Task.handlerFloatingPoint : FloatingPointState.initial(size: fp.bytes.count)
            try context.setFloatingPointState(floatingPoint)
        }
        // signal_delivered: block sa_mask and, without SA_NODEFER, the signal.
        var blocked = signalMask.rawValue | action.mask.rawValue
        if action.flags & LinuxSignal.SA_NODEFER == 0 { blocked |= info.signal.mask }
        setSignalMask(SignalSet(rawValue: blocked))
        savedSignalMask = nil
        if alternateSignalStack.flags & LinuxSignal.SS_AUTODISARM != 0 { alternateSignalStack = SignalStack() }
        return true
    }

    /// Writes the FP area and the frame below the stack (get_sigframe);
    /// returns the frame's address, nil when it cannot be built.
    private func buildFrame(_ info: SignalInfo, _ action: SignalAction, fp: FloatingPointState) -> UInt64? {
        guard action.flags & LinuxSignal.SA_RESTORER != 0 else { return nil }
        let stack = alternateSignalStack
        let nested = stack.isOn(registers.rsp)
        var sp = registers.rsp &- LinuxSignal.redZone
        var entering = false
        if action.flags & LinuxSignal.SA_ONSTACK != 0 && stack.flags(at: sp) == 0 {
            sp = stack.base &+ stack.size
            entering = true
        }
        let xstateSize = UInt64(fp.bytes.count)
        let (below, wrapped) = sp.subtractingReportingOverflow(xstateSize + LinuxSignal.FP_XSTATE_MAGIC2_SIZE)
        guard !wrapped else { return nil }
        let fpAddress = below & ~(LinuxSignal.xsaveAlignment - 1)
        let frameSize = UInt64(MemoryLayout<RawSignalFrame>.size)
        guard fpAddress >= frameSize + 16 else { return nil }
        let frameAddress = ((fpAddress - frameSize) & ~15) - 8
        if (nested || entering) && !stack.contains(frameAddress) { return nil }

        guard fp.bytes.count >= LinuxSignal.fxsaveSize + LinuxSignal.xsaveHeaderSize,
              let size32 = UInt32(exactly: xstateSize) else { return nil }
        let software = RawFPXSoftwareBytes(magic1: LinuxSignal.FP_XSTATE_MAGIC1,
                                           extendedSize: size32 + UInt32(LinuxSignal.FP_XSTATE_MAGIC2_SIZE),
                                           xfeatures: FloatingPointState.hostFeatures, xstateSize: size32)
        let mask = (savedSignalMask ?? signalMask).rawValue
        var frame = RawSignalFrame()
        frame.pretcode = action.restorer
        frame.uc.flags = LinuxSignal.UC_FP_XSTATE | LinuxSignal.UC_SIGCONTEXT_SS | LinuxSignal.UC_STRICT_RESTORE_SS
        frame.uc.stack = Signals.RawStack(base: stack.base, flags: stack.flags, size: stack.size)
        frame.uc.mcontext = sigcontext(fpstate: fpAddress, mask: mask)
        frame.uc.sigmask = mask
        if action.flags & LinuxSignal.SA_SIGINFO != 0 { frame.info = info.raw }
        // The area as the frame holds it: the XSAVE state, its software
        // bytes, the x87 and SSE bits always set (for legacy readers), and
        // MAGIC2 after it; built in place, without copies of the state.
        let areaSize = fp.bytes.count + MemoryLayout<UInt32>.size
        do {
            try withUnsafeTemporaryAllocation(byteCount: areaSize, alignment: 16) { area throws(SyscallError) in
                fp.bytes.withUnsafeBytes { area.copyMemory(from: $0) }
                area.storeBytes(of: software, toByteOffset: LinuxSignal.fxSoftwareBytesOffset, as: RawFPXSoftwareBytes.self)
                let bv = area.load(fromByteOffset: LinuxSignal.fxsaveSize, as: UInt64.self)
                area.storeBytes(of: bv | LinuxSignal.XFEATURE_MASK_FPSSE, toByteOffset: LinuxSignal.fxsaveSize, as: UInt64.self)
                area.storeBytes(of: LinuxSignal.FP_XSTATE_MAGIC2.littleEndian, toByteOffset: fp.bytes.count, as: UInt32.self)
                try copyOut(UnsafeRawBufferPointer(area), to: fpAddress)
            }
            try copyOut(value: frame, to: frameAddress)
        } catch {
            return nil
        }
        return frameAddress
    }

    private func sigcontext(fpstate: UInt64, mask: UInt64) -> RawSigcontext {
        let r = registers
        var context = RawSigcontext(
            r8: r.r8, r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
            di: r.rdi, si: r.rsi, bp: r.rbp, bx: r.rbx, dx: r.rdx, ax: r.rax, cx: r.rcx, sp: r.rsp,
            ip: r.rip, flags: r.eflags,
            cs: UInt16(truncatingIfNeeded: r.cs), gs: UInt16(truncatingIfNeeded: r.gs),
            fs: UInt16(truncatingIfNeeded: r.fs), ss: UInt16(truncatingIfNeeded: r.ss))
        if let fault = faultContext {
            context.trapno = fault.trapNumber
            context.err = fault.errorCode
            context.cr2 = fault.address
        }
        context.oldmask = mask
        context.fpstate = fpstate
        return context
    }

    /// rt_sigreturn: restores the mask, the registers (only the eflags bits a
    /// program may change; selectors stay the user ones), the FP state after
    /// checking its magic words and sizes, and the alternate stack. A frame
    /// that cannot be read or restored is a SIGSEGV (signal_fault).
    func signalReturn() -> Int64 {
        let frameAddress = registers.rsp &- 8
        guard let frame = try? copyIn(RawSignalFrame.self, from: frameAddress) else { return badSignalFrame() }
        setSignalMask(SignalSet(rawValue: frame.uc.sigmask))
        restartBlock = nil
        let sc = frame.uc.mcontext
        registers.r8 = sc.r8; registers.r9 = sc.r9; registers.r10 = sc.r10; registers.r11 = sc.r11
        registers.r12 = sc.r12; registers.r13 = sc.r13; registers.r14 = sc.r14; registers.r15 = sc.r15
        registers.rdi = sc.di; registers.rsi = sc.si; registers.rbp = sc.bp; registers.rbx = sc.bx
        registers.rdx = sc.dx; registers.rax = sc.ax; registers.rcx = sc.cx; registers.rsp = sc.sp
        registers.rip = sc.ip
        registers.eflags = (registers.eflags & ~LinuxSignal.FIX_EFLAGS) | (sc.flags & LinuxSignal.FIX_EFLAGS)
        registers.cs = Registers.userCodeSelector
        registers.ss = Registers.userDataSelector
        // No syscall to restart from here on.
        registers.origRax = UInt64.max
        guard let restored = restoreFloatingPoint(from: sc.fpstate) else { return badSignalFrame() }
        floatingPoint = restored
        floatingPointNeedsLoad = true
        let stack = frame.uc.stack
        _ = try? changeAlternateStack(to: SignalStack(base: stack.base, flags: stack.flags, size: stack.size))
        return Int64(bitPattern: registers.rax)
    }

    private func badSignalFrame() -> Int64 {
        forceSignal(SignalInfo(signal: .segmentationFault, code: LinuxSignal.SI_KERNEL, senderPID: 0, senderUID: 0))
        return 0
    }

    /// The FP state a frame holds (fpu__restore_sig): the full XSAVE area when
    /// its magic words and sizes hold, else only the legacy FXSAVE region (a
    /// frame written without XSAVE). Nil for a header XRSTOR would fault on;
    /// an MXCSR bit this CPU lacks is refused by the host when the state is
    /// loaded (`returnToUser`), against the CPU's own MXCSR_MASK. The frame
    /// is read straight into the state: the legacy region (the software
    /// bytes are its end), then the rest of the area with MAGIC2.
    private func restoreFloatingPoint(from address: UInt64) -> FloatingPointState? {
        let hostSize = FloatingPointState.hostSize
        if address == 0 { return FloatingPointState.initial(size: hostSize) }
        let legacy = LinuxSignal.fxsaveSize
        let minimum = legacy + LinuxSignal.xsaveHeaderSize
        var state = FloatingPointState.initial(size: hostSize)
        let valid = state.bytes.withUnsafeMutableBytes { target -> Bool in
            guard (try? copyIn(from: address, into: UnsafeMutableRawBufferPointer(rebasing: target[..<legacy]))) != nil else {
                return false
            }
            let software = target.loadUnaligned(fromByteOffset: LinuxSignal.fxSoftwareBytesOffset, as: RawFPXSoftwareBytes.self)
            let size = Int(software.xstateSize)
            var fullState = software.magic1 == LinuxSignal.FP_XSTATE_MAGIC1
                && size >= minimum && size <= hostSize && software.xstateSize <= software.extendedSize
            if fullState {
                guard let found = readExtendedFloatingPoint(at: address, size: size, into: target) else { return false }
                fullState = found
            }
            let restoredFeatures = fullState
                ? software.xfeatures & FloatingPointState.hostFeatures : LinuxSignal.XFEATURE_MASK_FPSSE
            for offset in LinuxSignal.fxSoftwareBytesOffset..<legacy { target[offset] = 0 }
            var bv = LinuxSignal.XFEATURE_MASK_FPSSE
            if fullState {
                bv = target.load(fromByteOffset: legacy, as: UInt64.self)
                let header = UnsafeRawBufferPointer(rebasing: target[(legacy + 8)..<minimum])
                guard bv & ~FloatingPointState.hostFeatures == 0, header.allSatisfy({ $0 == 0 }) else { return false }
            } else {
                for offset in legacy..<minimum { target[offset] = 0 }
            }
            target.storeBytes(of: bv & restoredFeatures, toByteOffset: legacy, as: UInt64.self)
            return true
        }
        return valid ? state : nil
    }

    /// The XSAVE area past the legacy region of a frame's FP state of `size`
    /// bytes, and MAGIC2 after it (check_xstate_in_sigframe): true, the
    /// area copied into `target`, when MAGIC2 is there; false (the legacy
    /// region alone counts) when it is not; nil when unreadable. Linux reads
    /// MAGIC2 first, so an unreadable area without it is no bad frame.
    private func readExtendedFloatingPoint(at address: UInt64, size: Int,
                                           into target: UnsafeMutableRawBufferPointer) -> Bool? {
        let legacy = LinuxSignal.fxsaveSize
        let magic2 = LinuxSignal.FP_XSTATE_MAGIC2
        return withUnsafeTemporaryAllocation(byteCount: size - legacy + MemoryLayout<UInt32>.size, alignment: 16) { buffer -> Bool? in
            guard (try? copyIn(from: address &+ UInt64(legacy), into: buffer)) != nil else {
                guard let found = try? copyIn(UInt32.self, from: address &+ UInt64(size)) else { return nil }
                return found == magic2 ? nil : false
            }
            guard buffer.loadUnaligned(fromByteOffset: size - legacy, as: UInt32.self) == magic2 else { return false }
            UnsafeMutableRawBufferPointer(rebasing: target[legacy..<size])
                .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[..<(size - legacy)]))
            return true
        }
    }

    /// sigaltstack's change (do_sigaltstack): EPERM while running on the
    /// current alternate stack, EINVAL for an unknown mode, ENOMEM below
    /// MINSIGSTKSZ. Linux keeps the flags as given.
    func changeAlternateStack(to new: SignalStack) throws(SyscallError) {
        let current = alternateSignalStack
        guard !current.isOn(registers.rsp) else { throw .eperm }
        let mode = new.flags & ~LinuxSignal.SS_AUTODISARM
        guard mode == 0 || mode == LinuxSignal.SS_DISABLE || mode == LinuxSignal.SS_ONSTACK else { throw .einval }
        if new == current { return }
        if mode == LinuxSignal.SS_DISABLE {
            alternateSignalStack = SignalStack(base: 0, flags: new.flags, size: 0)
            return
        }
        guard new.size >= LinuxSignal.MINSIGSTKSZ else { throw .enomem }
        alternateSignalStack = new
    }
}

extension SyscallError {
    /// The restart code a syscall left in rax, if any (what Linux's
    /// signal code switches on: ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND,
    /// ERESTART_RESTARTBLOCK).
    static func restartCode(inReturnValue rax: UInt64) -> SyscallError? {
        let (errno, overflow) = Int64(0).subtractingReportingOverflow(Int64(bitPattern: rax))
        guard !overflow, let raw = Int32(exactly: errno) else { return nil }
        switch SyscallError(rawValue: raw) {
        case .erestartsys: return .erestartsys
        case .erestartnointr: return .erestartnointr
        case .erestartnohand: return .erestartnohand
        case .erestartRestartblock: return .erestartRestartblock
        default: return nil
        }
    }
}

/// What a fault leaves for the frame's sigcontext (trapno, err, cr2); host-only.
struct FaultContext {
    var trapNumber: UInt64
    var errorCode: UInt64
    var address: UInt64
}

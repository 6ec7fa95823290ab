import Glibc

/// Signals: dispositions, masks, the alternate stack, sending (kill, tkill,
/// tgkill, sigqueue), waiting (pause, sigsuspend, sigtimedwait) and
/// rt_sigreturn. Delivery itself is in Signals/Task+Signals.swift.
extension SyscallTable {
    mutating func registerSignal() {
        register(13, Signals.rtSigaction)
        register(14, Signals.rtSigprocmask)
        register(15, Signals.rtSigreturn)
        register(34, Signals.pause)
        register(62, Signals.kill)
        register(127, Signals.rtSigpending)
        register(128, Signals.rtSigtimedwait)
        register(129, Signals.rtSigqueueinfo)
        register(130, Signals.rtSigsuspend)
        register(131, Signals.sigaltstack)
        register(200, Signals.tkill)
        register(234, Signals.tgkill)
        register(297, Signals.rtTgsigqueueinfo)
        registerSignalFD()
    }
}

enum Signals {
    /// struct sigaction as the x86_64 kernel reads it.
    struct RawAction: BitwiseCopyable {
        var handler: UInt64
        var flags: UInt64
        var restorer: UInt64
        var mask: UInt64
    }

    /// stack_t on x86_64.
    struct RawStack: BitwiseCopyable {
        var base: UInt64
        var flags: Int32
        var padding: Int32 = 0
        var size: UInt64
    }

    static func rtSigaction(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(3) == LinuxSignal.sigsetSize else { throw .einval }
        var newAction: SignalAction?
        if args.pointer(1) != 0 {
            let raw = try task.copyIn(RawAction.self, from: args.pointer(1))
            newAction = SignalAction(handler: raw.handler, flags: raw.flags & LinuxSignal.UAPI_SA_FLAGS, restorer: raw.restorer,
                                     mask: SignalSet(rawValue: raw.mask & ~SignalSet.unblockable.rawValue))
        }
        let signal = Signal(rawValue: args.int(0))
        guard signal.isValid, newAction == nil || !signal.isUncatchable else { throw .einval }
        guard let group = task.threadGroup else { throw .einval }
        let old = group.lock.withLock { _ -> SignalAction in
            guard let newAction else { return group.signalHandlers.action(for: signal) }
            let old = group.signalHandlers.setAction(newAction, for: signal)
            // POSIX: setting SIG_IGN (or SIG_DFL for a default-ignored
            // signal) discards the pending instances, blocked or not.
            if newAction.ignores(signal) { group.flushPendingLocked(signal) }
            return old
        }
        if args.pointer(2) != 0 {
            try task.copyOut(value: RawAction(handler: old.handler, flags: old.flags, restorer: old.restorer,
                                              mask: old.mask.rawValue), to: args.pointer(2))
        }
        return 0
    }

    static func rtSigprocmask(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(3) == LinuxSignal.sigsetSize else { throw .einval }
        let old = task.signalMask
        if args.pointer(1) != 0 {
            let set = try task.copyIn(UInt64.self, from: args.pointer(1))
            switch args.int(0) {
            case LinuxSignal.SIG_BLOCK: task.setSignalMask(SignalSet(rawValue: old.rawValue | set))
            case LinuxSignal.SIG_UNBLOCK: task.setSignalMask(SignalSet(rawValue: old.rawValue & ~set))
            case LinuxSignal.SIG_SETMASK: task.setSignalMask(SignalSet(rawValue: set))
            default: throw .einval
            }
        }
        if args.pointer(2) != 0 { try task.copyOut(value: old.rawValue, to: args.pointer(2)) }
        return 0
    }

    static func rtSigreturn(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        task.signalReturn()
    }

    static func sigaltstack(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let current = task.alternateSignalStack
        var replacement: SignalStack?
        if args.pointer(0) != 0 {
            let raw = try task.copyIn(RawStack.self, from: args.pointer(0))
            replacement = SignalStack(base: raw.base, flags: raw.flags, size: raw.size)
        }
        if let replacement { try task.changeAlternateStack(to: replacement) }
        if args.pointer(1) != 0 {
            let flags = current.flags(at: task.registers.rsp) | (current.flags & LinuxSignal.SS_AUTODISARM)
            try task.copyOut(value: RawStack(base: current.base, flags: flags, size: current.size), to: args.pointer(1))
        }
        return 0
    }

    static func rtSigpending(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(1) <= LinuxSignal.sigsetSize else { throw .einval }
        let pending = task.pendingSignalSet.rawValue & task.signalMask.rawValue
        let bytes = withUnsafeBytes(of: pending.littleEndian) { Array($0.prefix(Int(args.uint64(1)))) }
        try task.copyOut(bytes, to: args.pointer(0))
        return 0
    }

    /// pause(2): sleeps until a signal is deliverable; ERESTARTNOHAND makes
    /// it EINTR after a handler and restarts it otherwise (an ignored signal,
    /// a checkpoint).
    static func pause(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try waitForSignal(task)
    }

    /// rt_sigsuspend(2): pause with a temporary mask, the old one put back
    /// after the handler (through the frame) or when nothing was delivered.
    static func rtSigsuspend(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(1) == LinuxSignal.sigsetSize else { throw .einval }
        let mask = try task.copyIn(UInt64.self, from: args.pointer(0))
        return try task.withTemporarySignalMask(SignalSet(rawValue: mask)) { () throws(SyscallError) -> Int64 in
            try waitForSignal(task)
        }
    }

    /// Sleeps until a signal comes, then ends the call with `ending`
    /// (pause's ERESTARTNOHAND; a wait that nothing else ends, ERESTARTSYS).
    static func waitForSignal(_ task: Task, ending: SyscallError = .erestartnohand) throws(SyscallError) -> Int64 {
        while !task.hasDeliverableSignal {
            if task.mustExit { throw .eintr }
            do {
                try task.waiter.block()
            } catch {
                break
            }
        }
        throw ending
    }

    /// rt_sigtimedwait(2): takes a signal of `set` when one is pending, or
    /// waits for one with those signals unblocked, up to the timeout (EAGAIN).
    /// A handled signal outside the set ends the wait with EINTR; a
    /// checkpoint restarts it (a relative timeout then starts over).
    static func rtSigtimedwait(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(3) == LinuxSignal.sigsetSize else { throw .einval }
        let set = SignalSet(rawValue: try task.copyIn(UInt64.self, from: args.pointer(0))
                            & ~SignalSet.unblockable.rawValue)
        var timeout: Int64?
        if args.pointer(2) != 0 {
            let spec = try task.copyIn(Time.Timespec.self, from: args.pointer(2))
            guard spec.isValid else { throw .einval }
            timeout = spec.total
        }
        let info = try waitForSignal(task, in: set, timeout: timeout)
        if args.pointer(1) != 0 { try task.copyOut(value: info.raw, to: args.pointer(1)) }
        return Int64(info.signal.rawValue)
    }

    private static func waitForSignal(_ task: Task, in set: SignalSet, timeout: Int64?) throws(SyscallError) -> SignalInfo {
        if let info = task.dequeueSignal(from: set) { return info }
        if timeout == 0 { throw .eagain }
        let deadline = timeout.map { Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingSaturating($0) } ?? .max
        let blocked = task.signalMask
        task.setSignalMask(SignalSet(rawValue: blocked.rawValue & ~set.rawValue))
        defer { task.setSignalMask(blocked) }
        var interrupted = false
        while !task.hasDeliverableSignal && !task.mustExit {
            do {
                try task.waiter.block(untilHostMonotonic: deadline)
            } catch {
                interrupted = true
                break
            }
            if Clocks.hostNanoseconds(CLOCK_MONOTONIC) >= deadline { break }
        }
        if let info = task.dequeueSignal(from: set) { return info }
        if task.mustExit { throw .eintr }
        if task.hasDeliverableSignal { throw .eintr }
        if interrupted { throw .erestartnohand }
        throw .eagain
    }

    /// kill(2): a process (pid > 0), the caller's process group (0), every
    /// process but init and the caller (-1), or process group -pid.
    static func kill(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let pid = args.int(0), signal = Signal(rawValue: args.int(1))
        // -INT_MIN does not exist; Linux's kill answers ESRCH before negating.
        guard pid != .min else { throw .esrch }
        guard let namespace = task.kernel?.pidNamespace else { throw .esrch }
        let targets: [ThreadGroup]
        if pid > 0 {
            guard let group = namespace.threadGroup(pid) else { throw .esrch }
            targets = [group]
        } else if pid == -1 {
            targets = namespace.allThreadGroups.filter { $0.id > 1 && $0 !== task.threadGroup }
        } else {
            let processGroup = pid == 0 ? (task.threadGroup?.processGroupID ?? 0) : -pid
            targets = namespace.allThreadGroups.filter { $0.processGroupID == processGroup }
        }
        guard !targets.isEmpty else { throw .esrch }
        guard signal.rawValue == 0 || signal.isValid else { throw .einval }
        // One process: its EPERM. A process group: EPERM only when no member
        // may be signalled. -1: those that may not are passed over.
        let permitted = targets.filter { task.maySignal($0, signal: signal) }
        if permitted.isEmpty, pid != -1 { throw .eperm }
        guard signal.rawValue != 0 else { return 0 }
        let info = SignalInfo(signal: signal, code: LinuxSignal.SI_USER, senderPID: task.processID,
                              senderUID: task.credentials.realUID)
        for group in permitted { try group.send(info, from: task) }
        return 0
    }

    static func tgkill(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let tgid = args.int(0), tid = args.int(1)
        guard tgid > 0, tid > 0 else { throw .einval }
        return try sendToThread(task, tgid: tgid, tid: tid, signal: Signal(rawValue: args.int(2)), info: nil)
    }

    static func tkill(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let tid = args.int(0)
        guard tid > 0 else { throw .einval }
        return try sendToThread(task, tgid: nil, tid: tid, signal: Signal(rawValue: args.int(1)), info: nil)
    }

    /// rt_sigqueueinfo(2): a siginfo of the caller's making to a process.
    /// Only the caller itself may claim a kernel or tkill origin (si_code >= 0, SI_TKILL).
    static func rtSigqueueinfo(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let pid = args.int(0), signal = Signal(rawValue: args.int(1))
        let raw = try task.copyIn(RawSignalInfo.self, from: args.pointer(2))
        guard !claimsKernelOrigin(raw) || pid == task.processID else { throw .eperm }
        guard let group = task.kernel?.pidNamespace.threadGroup(pid) else { throw .esrch }
        guard signal.rawValue == 0 || signal.isValid else { throw .einval }
        guard task.maySignal(group, signal: signal) else { throw .eperm }
        if signal.rawValue != 0 { try group.send(SignalInfo(raw, signal: signal), from: task) }
        return 0
    }

    /// rt_tgsigqueueinfo(2): the same to one thread.
    static func rtTgsigqueueinfo(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let tgid = args.int(0), tid = args.int(1)
        let raw = try task.copyIn(RawSignalInfo.self, from: args.pointer(3))
        guard tgid > 0, tid > 0 else { throw .einval }
        guard !claimsKernelOrigin(raw) || tid == task.id else { throw .eperm }
        return try sendToThread(task, tgid: tgid, tid: tid, signal: Signal(rawValue: args.int(2)), info: raw)
    }

    /// A siginfo only the kernel, or a tkill to oneself, may make (si_code >= 0, SI_TKILL).
    static func claimsKernelOrigin(_ raw: RawSignalInfo) -> Bool {
        raw.code >= 0 || raw.code == LinuxSignal.SI_TKILL
    }

    /// do_send_specific: ESRCH for no such thread (in `tgid`), then EINVAL
    /// for a bad signal; signal 0 only checks.
    private static func sendToThread(_ task: Task, tgid: Int32?, tid: Int32, signal: Signal,
                                     info raw: RawSignalInfo?) throws(SyscallError) -> Int64 {
        guard let target = task.kernel?.pidNamespace.task(tid), tgid == nil || target.processID == tgid,
              let group = target.threadGroup else { throw .esrch }
        guard signal.rawValue == 0 || signal.isValid else { throw .einval }
        guard task.maySignal(group, thread: target, signal: signal) else { throw .eperm }
        guard signal.rawValue != 0 else { return 0 }
        let info = raw.map { SignalInfo($0, signal: signal) }
            ?? SignalInfo(signal: signal, code: LinuxSignal.SI_TKILL, senderPID: task.processID,
                          senderUID: task.credentials.realUID)
        try group.send(info, to: target, from: task)
        return 0
    }
}

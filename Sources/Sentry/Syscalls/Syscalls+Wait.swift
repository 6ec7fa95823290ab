import Glibc

/// wait4 and waitid (Linux's do_wait).
extension SyscallTable {
    mutating func registerWait() {
        register(61, Wait.wait4)
        register(247, Wait.waitid)
    }
}

/// Which children a wait is for.
enum WaitTarget {
    case any
    case process(Int32)
    case processGroup(Int32)
    /// The process a pidfd names, whatever PID it had.
    case threadGroup(ThreadGroup)
}

/// A child's state change a wait reports.
struct ChildEvent {
    var pid: Int32
    var uid: UInt32
    /// si_code: CLD_EXITED, CLD_KILLED, CLD_DUMPED (and, with job control, CLD_STOPPED, CLD_CONTINUED).
    var code: Int32
    /// si_status.
    var status: Int32
    /// The status word wait4 stores.
    var waitStatus: Int32
    var userTime: Int64
    var systemTime: Int64
}

extension ThreadGroup {
    /// The one place that decides what a waiter sees of this child with
    /// `options`: its exit once it is a zombie (WEXITED); else a stop or a
    /// continue not reported yet (WSTOPPED, WCONTINUED: jobControlEvent);
    /// nil while it has nothing to report. Under the process tree lock.
    func waitableEventLocked(options: Int32) -> ChildEvent? {
        guard isZombie else { return jobControlEvent(options: options) }
        guard options & LinuxProcess.WEXITED != 0,
              let reason = lock.withLock({ _ in exitReason }) else { return nil }
        let (user, system) = totalCPUTime
        return ChildEvent(pid: id, uid: leader?.credentials.realUID ?? 0, code: reason.childCode,
                          status: reason.childStatus, waitStatus: reason.waitStatus, userTime: user, systemTime: system)
    }

    /// eligible_pid and eligible_child: whether a wait for `target` with
    /// `options` considers this child. A child whose exit signal is not
    /// SIGCHLD is a "clone" child, seen only with __WCLONE (or __WALL).
    func isEligibleLocked(for target: WaitTarget, options: Int32) -> Bool {
        switch target {
        case .any: break
        case .process(let pid): guard id == pid else { return false }
        case .processGroup(let group): guard processGroupID == group else { return false }
        case .threadGroup(let group): guard group === self else { return false }
        }
        if options & LinuxProcess.__WALL != 0 { return true }
        return (exitSignal != .child) == (options & LinuxProcess.__WCLONE != 0)
    }
}

enum Wait {
    /// Waits for a child of `target` to have an event for `options`; reaps
    /// an exited one unless WNOWAIT. Nil with WNOHANG when none has one yet;
    /// ECHILD when no child is eligible; a signal or a checkpoint ends the
    /// wait with ERESTARTSYS (restarted under SA_RESTART or when no handler
    /// runs, EINTR otherwise).
    static func waitForChild(_ task: Task, _ target: WaitTarget, options: Int32) throws(SyscallError) -> ChildEvent? {
        guard let kernel = task.kernel, let group = task.threadGroup else { throw .echild }
        var interrupted = false
        while true {
            task.waiter.reset()
            let (event, eligible, reaped) = kernel.processTree.withLock { _ -> (ChildEvent?, Bool, ThreadGroup?) in
                task.waitingForChild = false
                var eligible = false
                for child in group.children where child.isEligibleLocked(for: target, options: options) {
                    eligible = true
                    guard let event = child.waitableEventLocked(options: options) else { continue }
                    guard options & LinuxProcess.WNOWAIT == 0 && child.isZombie else { return (event, true, nil) }
                    kernel.reapLocked(child, waited: true)
                    return (event, true, child)
                }
                task.waitingForChild = eligible && options & LinuxProcess.WNOHANG == 0
                return (nil, eligible, nil)
            }
            reaped?.pidfdWaiters.notify(PidFile.reapedEvents)
            if let event { return event }
            guard eligible else { throw .echild }
            if options & LinuxProcess.WNOHANG != 0 { return nil }
            // As Linux's do_wait, the children are looked at again before a
            // signal ends the wait: a child reaped by SA_NOCLDWAIT while the
            // parent slept makes the wait ECHILD, not EINTR.
            if interrupted || task.hasDeliverableSignal || task.mustExit || kernel.pauseGate.isRequested {
                kernel.processTree.withLock { _ in task.waitingForChild = false }
                throw .erestartsys
            }
            do { try task.waiter.block() } catch { interrupted = true }
        }
    }

    /// wait4(pid, wstatus, options, rusage): pid < -1 a process group,
    /// -1 any child, 0 the caller's group, > 0 that child.
    static func wait4(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let pid = args.int(0)
        let options = args.int(2)
        let allowed = LinuxProcess.WNOHANG | LinuxProcess.WUNTRACED | LinuxProcess.WCONTINUED
            | LinuxProcess.__WNOTHREAD | LinuxProcess.__WCLONE | LinuxProcess.__WALL
        guard options & ~allowed == 0 else { throw .einval }
        // -INT_MIN has no meaning.
        guard pid != Int32.min else { throw .esrch }
        let target: WaitTarget
        if pid < -1 {
            target = .processGroup(-pid)
        } else if pid == -1 {
            target = .any
        } else if pid == 0 {
            target = .processGroup(task.threadGroup?.processGroupID ?? 0)
        } else {
            target = .process(pid)
        }
        guard let event = try waitForChild(task, target, options: options | LinuxProcess.WEXITED) else { return 0 }
        if args.pointer(1) != 0 { try task.copyOut(value: event.waitStatus, to: args.pointer(1)) }
        if args.pointer(3) != 0 { try task.copyOut(value: Process.RawUsage(event), to: args.pointer(3)) }
        return Int64(event.pid)
    }

    /// waitid(idtype, id, infop, options, rusage). With WNOHANG and nothing
    /// to report, infop's fields are zero.
    static func waitid(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let idType = args.int(0)
        let id = args.int(1)
        var options = args.int(3)
        let allowed = LinuxProcess.WNOHANG | LinuxProcess.WNOWAIT | LinuxProcess.WEXITED | LinuxProcess.WSTOPPED
            | LinuxProcess.WCONTINUED | LinuxProcess.__WNOTHREAD | LinuxProcess.__WCLONE | LinuxProcess.__WALL
        guard options & ~allowed == 0,
              options & (LinuxProcess.WEXITED | LinuxProcess.WSTOPPED | LinuxProcess.WCONTINUED) != 0 else {
            throw .einval
        }
        let target: WaitTarget
        var nonBlockingPidFD = false
        switch idType {
        case LinuxProcess.P_ALL:
            target = .any
        case LinuxProcess.P_PID:
            guard id > 0 else { throw .einval }
            target = .process(id)
        case LinuxProcess.P_PGID:
            guard id >= 0 else { throw .einval }
            target = .processGroup(id == 0 ? task.threadGroup?.processGroupID ?? 0 : id)
        case LinuxProcess.P_PIDFD:
            guard id >= 0 else { throw .einval }
            let (file, group) = try PidFDSyscalls.target(of: id, in: task)
            target = .threadGroup(group)
            if file.isNonBlocking && options & LinuxProcess.WNOHANG == 0 {
                options |= LinuxProcess.WNOHANG
                nonBlockingPidFD = true
            }
        default:
            throw .einval
        }
        let event = try waitForChild(task, target, options: options)
        // A non-blocking pidfd's process with nothing to report: EAGAIN, not an empty answer.
        if event == nil && nonBlockingPidFD { throw .eagain }
        if let event, args.pointer(4) != 0 { try task.copyOut(value: Process.RawUsage(event), to: args.pointer(4)) }
        let infop = args.pointer(2)
        guard infop != 0 else { return 0 }
        let header = RawWaitInfoHeader(signal: event == nil ? 0 : Signal.child.rawValue, errno: 0, code: event?.code ?? 0)
        let fields = RawWaitInfoFields(pid: event?.pid ?? 0, uid: event?.uid ?? 0, status: event?.status ?? 0)
        try task.copyOut(value: header, to: infop)
        try task.copyOut(value: fields, to: infop &+ UInt64(MemoryLayout<RawSignalInfo>.offset(of: \.fields) ?? 16))
        return 0
    }

    /// The siginfo words waitid writes: si_signo, si_errno, si_code ...
    struct RawWaitInfoHeader: BitwiseCopyable {
        var signal: Int32
        var errno: Int32
        var code: Int32
    }

    /// ... and si_pid, si_uid, si_status (the rest of the siginfo is left alone, as Linux does).
    struct RawWaitInfoFields: BitwiseCopyable {
        var pid: Int32
        var uid: UInt32
        var status: Int32
    }
}

extension Process.RawUsage {
    /// The rusage a wait reports for `event`: CPU times (the child's and its reaped children's).
    init(_ event: ChildEvent) {
        self.init(userTime: event.userTime, systemTime: event.systemTime)
    }
}

import Glibc
import Platform
import State

/// A process's job-control state: Linux's SIGNAL_STOP_STOPPED with the stop
/// signal (group_exit_code), and the stop and continue that the parent's
/// wait (WUNTRACED, WCONTINUED) has not reported yet (the stopped task's
/// exit_code, SIGNAL_STOP_CONTINUED). A wait that reports one clears its
/// flag (unless WNOWAIT); a continue clears an unreported stop and the
/// reverse. Guarded by the thread group's `lock`.
struct JobControlState: SavableStruct, Equatable, Sendable {
    static let savedTypeName = "sentry.JobControlState"

    /// The signal that stopped the process; nil while it runs.
    var stopSignal: Signal?
    /// A stop the parent's wait has not reported yet (WUNTRACED).
    var stopUnreported = false
    /// A continue the parent's wait has not reported yet (WCONTINUED).
    var continueUnreported = false
    /// Forked and not exec'd since (PF_FORKNOEXEC): its parent may still
    /// move it to another process group; after an exec setpgid is EACCES.
    var forkedWithoutExec = false

    init() {}

    func save(to sink: inout SaveSink) throws {
        try sink.save("stopSignal", stopSignal)
        try sink.save("stopUnreported", stopUnreported)
        try sink.save("continueUnreported", continueUnreported)
        try sink.save("forkedWithoutExec", forkedWithoutExec)
    }

    init(from source: inout LoadSource) throws {
        stopSignal = try source.load("stopSignal", default: nil)
        stopUnreported = try source.load("stopUnreported", default: false)
        continueUnreported = try source.load("continueUnreported", default: false)
        forkedWithoutExec = try source.load("forkedWithoutExec", default: false)
        if let stopSignal {
            try ImageValidation.require(stopSignal.defaultStops, field: "stopSignal",
                                        "signal \(stopSignal.rawValue) does not stop a process")
        }
    }
}

/// Stop and continue (Linux's prepare_signal, do_signal_stop and
/// do_notify_parent_cldstop). A stop signal whose action is the default
/// stops every task of the process where it is taken: each task sleeps in
/// `waitWhileStopped` until SIGCONT or SIGKILL, and a checkpoint's pause
/// parks it like a running task, so a stopped process is saved and
/// restores stopped. The stop is complete at once (no task runs
/// application code while the group is stopped), so the parent is told
/// when the stop begins.
extension ThreadGroup {
    /// Whether the process is stopped (a stop signal's default action, no SIGCONT since).
    public var isStopped: Bool { lock.withLock { _ in jobControl.stopSignal != nil } }

    /// prepare_signal's job control, under `lock`, for every signal sent
    /// before it may be dropped as ignored: a stop signal discards pending
    /// SIGCONT; SIGCONT discards pending stop signals and ends a stop.
    /// Returns whether it ended one: the caller wakes the tasks and tells
    /// the parent (`continued()`) once the lock is let go.
    func prepareJobControlLocked(_ signal: Signal) -> Bool {
        if signal.defaultStops {
            flushPendingLocked(SignalSet(rawValue: Signal.cont.mask))
            return false
        }
        guard signal == .cont else { return false }
        flushPendingLocked(SignalSet.stopSignals)
        guard jobControl.stopSignal != nil else { return false }
        jobControl.stopSignal = nil
        jobControl.stopUnreported = false
        jobControl.continueUnreported = true
        return true
    }

    /// After SIGCONT ended a stop: every task goes on, and the parent gets
    /// SIGCHLD with CLD_CONTINUED.
    func continued() {
        for task in members { task.interrupt() }
        notifyParentOfJobControl(code: LinuxProcess.CLD_CONTINUED, status: Signal.cont.rawValue)
    }

    /// do_signal_stop for `signal`, taken by `task` with the default
    /// action: the process stops unless it is exiting or already stopped,
    /// or `signal` comes from a terminal and the process group is orphaned.
    /// The other tasks are kicked so they stop too.
    func beginStop(_ signal: Signal, takenBy task: Task) {
        if signal.isTerminalStop && isProcessGroupOrphaned { return }
        let others = lock.withLock { _ -> [Task]? in
            guard exitReason == nil, jobControl.stopSignal == nil else { return nil }
            jobControl.stopSignal = signal
            jobControl.stopUnreported = true
            jobControl.continueUnreported = false
            return tasks.filter { $0 !== task }
        }
        guard let others else { return }
        for other in others { other.interrupt() }
        notifyParentOfJobControl(code: LinuxProcess.CLD_STOPPED, status: signal.rawValue)
    }

    /// What the parent's wait with WUNTRACED reports (wait_task_stopped):
    /// the signal of a stop not reported yet, as status (signal << 8) | 0x7f
    /// or waitid's CLD_STOPPED with si_status the signal. The report is
    /// consumed unless `keep` (WNOWAIT).
    func takeStopReport(keep: Bool) -> Signal? {
        lock.withLock { _ in
            guard jobControl.stopUnreported, let signal = jobControl.stopSignal else { return nil }
            if !keep { jobControl.stopUnreported = false }
            return signal
        }
    }

    /// What the parent's wait with WCONTINUED reports (wait_task_continued):
    /// whether a continue is unreported, as status 0xffff or waitid's
    /// CLD_CONTINUED with si_status SIGCONT; consumed unless `keep`.
    func takeContinueReport(keep: Bool) -> Bool {
        lock.withLock { _ in
            guard jobControl.continueUnreported else { return false }
            if !keep { jobControl.continueUnreported = false }
            return true
        }
    }

    /// do_notify_parent_cldstop: the parent's waits look again, and it
    /// gets SIGCHLD unless it ignores SIGCHLD or asked for none on stop
    /// and continue (SA_NOCLDSTOP).
    private func notifyParentOfJobControl(code: Int32, status: Int32) {
        let (tellParent, waiters) = withProcessTree { () -> (ThreadGroup?, [Task]) in
            (self.parent, self.parent?.members.filter { $0.waitingForChild } ?? [])
        }
        for task in waiters { task.waiter.notify() }
        guard let parent = tellParent else { return }
        let action = parent.signalHandlers.action(for: .child)
        guard action.handler != SignalAction.ignoreHandler,
              action.flags & LinuxSignal.SA_NOCLDSTOP == 0 else { return }
        let time = cpuTimes
        try? parent.send(SignalInfo(child: .child, code: code, pid: id, uid: leader?.credentials.realUID ?? 0,
                                    status: status, userTime: time.user, systemTime: time.system))
    }

    /// wait_task_stopped and wait_task_continued, for `waitableEventLocked`:
    /// an unreported stop with WSTOPPED (WUNTRACED), else an unreported
    /// continue with WCONTINUED; consumed unless WNOWAIT.
    func jobControlEvent(options: Int32) -> ChildEvent? {
        let keep = options & LinuxProcess.WNOWAIT != 0
        let uid = leader?.credentials.realUID ?? 0
        if options & LinuxProcess.WSTOPPED != 0, let signal = takeStopReport(keep: keep) {
            let time = cpuTimes
            return ChildEvent(pid: id, uid: uid, code: LinuxProcess.CLD_STOPPED, status: signal.rawValue,
                              waitStatus: signal.rawValue << 8 | Self.stoppedWaitStatus, userTime: time.user,
                              systemTime: time.system)
        }
        if options & LinuxProcess.WCONTINUED != 0, takeContinueReport(keep: keep) {
            let time = cpuTimes
            return ChildEvent(pid: id, uid: uid, code: LinuxProcess.CLD_CONTINUED, status: Signal.cont.rawValue,
                              waitStatus: Self.continuedWaitStatus, userTime: time.user, systemTime: time.system)
        }
        return nil
    }

    /// The low byte of a stopped child's wait status (WIFSTOPPED), and a continued child's whole status (WIFCONTINUED).
    static let stoppedWaitStatus: Int32 = 0x7f
    static let continuedWaitStatus: Int32 = 0xffff
}

extension SignalInfo {
    /// A SIGCHLD-style siginfo (_sigchld): the child's PID and real UID, its
    /// status (exit code or signal) and its CPU times (ns) in clock ticks.
    init(child signal: Signal, code: Int32, pid: Int32, uid: UInt32, status: Int32, userTime: Int64, systemTime: Int64) {
        self.init(signal: signal, code: code, senderPID: pid, senderUID: uid)
        fields[1] = UInt64(UInt32(bitPattern: status))
        fields[2] = UInt64(bitPattern: userTime / Process.nanosecondsPerTick)
        fields[3] = UInt64(bitPattern: systemTime / Process.nanosecondsPerTick)
    }
}

extension Task {
    /// Sleeps while the process is stopped (TASK_STOPPED), until SIGCONT or
    /// SIGKILL. A checkpoint's pause parks the task here as if it were
    /// running: an interrupted syscall (`restart`) is rewound first, so the
    /// saved registers are complete and the call restarts after SIGCONT.
    func waitWhileStopped(_ context: Context, restart: inout SyscallError?) throws(PlatformError) {
        guard let kernel, let group = threadGroup else { return }
        while group.isStopped && !mustExit {
            if kernel.pauseGate.isRequested {
                if let pending = restart {
                    rewindForRestart(pending)
                    restart = nil
                }
                // Time parked is no CPU time: the waiter's block in `park` adds it to BlockedTime itself.
                try park(context, kernel: kernel)
                // A thrown-away kernel (the save/restore test mode): the run loop ends the task.
                if kernel.pauseGate.isDiscarded { return }
                continue
            }
            // Only SIGCONT, SIGKILL and a pause end the stop: other
            // interrupts are forgotten here, their signals stay pending.
            waiter.clearInterrupt()
            guard group.isStopped, !mustExit, !kernel.pauseGate.isRequested else { continue }
            _ = try? waiter.block()
        }
    }
}

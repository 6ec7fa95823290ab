import Synchronization

/// The process tree: parents and children, zombies, reaping, reparenting
/// (Linux's exit_notify, forget_original_parent, do_notify_parent,
/// release_task). Everything here runs under `Kernel.processTree`; the
/// signals and wake-ups it decides on are sent after the lock is let go.
extension ThreadGroup {
    /// Runs `body` under the kernel's process tree lock.
    func withProcessTree<T: Sendable>(_ body: () -> T) -> T {
        guard let kernel else { return body() }
        return kernel.processTree.withLock { _ in body() }
    }

    /// getppid: the parent's ID, 0 without one (init, a process started from outside).
    public var parentID: Int32 { withProcessTree { parent?.id ?? 0 } }

    /// PR_SET_CHILD_SUBREAPER / PR_GET_CHILD_SUBREAPER.
    var childSubreaper: Bool {
        get { withProcessTree { isChildSubreaper } }
        set { withProcessTree { isChildSubreaper = newValue } }
    }

    /// Whether the group exited and waits to be reaped (state Z).
    public var zombie: Bool { withProcessTree { isZombie } }

    /// The CPU time wait reports for this group once it is a zombie: its
    /// tasks' and its reaped children's, in ns.
    var totalCPUTime: (user: Int64, system: Int64) {
        lock.withLock { _ in
            (exitedUserTime.addingSaturating(childrenUserTime), exitedSystemTime.addingSaturating(childrenSystemTime))
        }
    }

    /// The process's CPU time (thread_group_cputime): its live threads' and
    /// its exited threads'. The one sum behind CLOCK_PROCESS_CPUTIME_ID,
    /// times(2), getrusage(RUSAGE_SELF), ITIMER_VIRTUAL and ITIMER_PROF, and
    /// a stop's or continue's SIGCHLD; under `lock`.
    func cpuTimesLocked() -> CPUTime {
        tasks.reduce(CPUTime(user: exitedUserTime, system: exitedSystemTime)) {
            CPUTime(user: $0.user.addingSaturating($1.userTime), system: $0.system.addingSaturating($1.systemTime))
        }
    }

    /// `cpuTimesLocked`, taking the lock.
    var cpuTimes: CPUTime { lock.withLock { _ in cpuTimesLocked() } }

    /// RUSAGE_CHILDREN: the CPU time of the reaped children, in ns.
    var reapedChildrenCPUTime: (user: Int64, system: Int64) {
        lock.withLock { _ in (childrenUserTime, childrenSystemTime) }
    }
}

/// CPU time in ns.
struct CPUTime {
    var user: Int64
    var system: Int64
    var total: Int64 { user.addingSaturating(system) }
}

/// What exit_notify decided to do once the lock is let go.
private struct ExitNotices {
    var signals: [(ThreadGroup, SignalInfo)] = []
    var waiters: [Task] = []
    /// Zombie children reaped at once, whose pidfd pollers hear of it.
    var reaped: [ThreadGroup] = []
}

extension Kernel {
    /// The last task of `group` left (exit_notify): its children go to a
    /// reaper, the group becomes a zombie its parent is told about with
    /// the exit signal, or is reaped at once when nobody will wait for it
    /// (no parent, or a parent ignoring SIGCHLD or with SA_NOCLDWAIT).
    /// Init's exit kills every other process, as a PID namespace's does.
    func threadGroupFinished(_ group: ThreadGroup, _ reason: ExitReason) {
        let isInit = group === initThreadGroup
        // Its timers end with it (exit_itimers): a zombie's would fire for nobody until the reap.
        group.lock.withLock { _ in
            group.realTimerDeadline = 0
            group.realTimerInterval = 0
        }
        group.deletePosixTimers()
        let notices = processTree.withLock { _ -> ExitNotices in
            var notices = ExitNotices()
            reparentChildrenLocked(of: group, isInit: isInit, notices: &notices)
            group.isZombie = true
            if group.parent != nil {
                if notifyParentLocked(of: group, notices: &notices) { reapLocked(group) }
            } else {
                reapLocked(group)
            }
            return notices
        }
        deliver(notices)
        group.pidfdWaiters.notify(group.pidfdState == .reaped ? PidFile.reapedEvents : PidFile.exitedEvents)
        if let notice = processExitNotice.withLock({ $0 }) { notice(group.id, reason) }
        if isInit {
            for other in pidNamespace.allThreadGroups where other !== group {
                other.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
            }
            memoryFile.containerEnded()
            notifyExit(reason)
        }
    }

    /// forget_original_parent: each child goes to the nearest ancestor
    /// that is a living subreaper, else to init (none when init itself
    /// exits); a child's parent-death signal is sent; zombies among them
    /// are announced to their new parent, which may reap them at once.
    private func reparentChildrenLocked(of group: ThreadGroup, isInit: Bool, notices: inout ExitNotices) {
        let orphans = group.children
        group.children = []
        guard !orphans.isEmpty else { return }
        let reaper = isInit ? nil : reaperLocked(for: group)
        for child in orphans {
            child.parent = reaper
            // The new parent gets SIGCHLD, whatever the old one was sent (reparent_leader).
            child.exitSignal = .child
            reaper?.children.append(child)
            if let signal = child.leader?.controls.parentDeathSignal, signal != 0, !child.isZombie {
                notices.signals.append((child, SignalInfo(signal: Signal(rawValue: signal), code: LinuxSignal.SI_USER,
                                                          senderPID: 0, senderUID: 0)))
            }
            guard child.isZombie else { continue }
            if reaper == nil || notifyParentLocked(of: child, notices: &notices) {
                reapLocked(child)
                notices.reaped.append(child)
            }
        }
    }

    /// find_new_reaper: the closest ancestor marked PR_SET_CHILD_SUBREAPER
    /// that is not exiting, else init while it lives.
    private func reaperLocked(for group: ThreadGroup) -> ThreadGroup? {
        var seen: Set<ObjectIdentifier> = [ObjectIdentifier(group)]
        var ancestor = group.parent
        while let candidate = ancestor, candidate !== initThreadGroup, seen.insert(ObjectIdentifier(candidate)).inserted {
            if candidate.isChildSubreaper && !candidate.isExiting { return candidate }
            ancestor = candidate.parent
        }
        guard let initGroup = initThreadGroup, initGroup !== group, !initGroup.isZombie else { return nil }
        return initGroup
    }

    /// do_notify_parent: queues the exit signal for the parent with the
    /// child's siginfo and wakes the parent's waits; returns whether the
    /// child is reaped at once (SIGCHLD ignored, or SA_NOCLDWAIT; an
    /// ignored SIGCHLD is not sent at all).
    private func notifyParentLocked(of child: ThreadGroup, notices: inout ExitNotices) -> Bool {
        guard let parent = child.parent else { return true }
        var signal = child.exitSignal
        var autoreap = false
        if signal == .child {
            let action = parent.signalHandlers.action(for: .child)
            if action.handler == SignalAction.ignoreHandler || action.flags & LinuxSignal.SA_NOCLDWAIT != 0 {
                autoreap = true
                if action.handler == SignalAction.ignoreHandler { signal = Signal(rawValue: 0) }
            }
        }
        if signal.isValid, let info = child.childExitInfo(signal: signal) {
            notices.signals.append((parent, info))
        }
        notices.waiters += parent.members.filter(\.waitingForChild)
        return autoreap
    }

    /// Forgets a zombie: it leaves its parent's children and its PID is free.
    /// `waited` adds its CPU time to the parent's children time (wait_task_zombie).
    /// The caller wakes the group's pidfd pollers with `PidFile.reapedEvents`
    /// once the process tree's lock is let go (Linux wakes them when the PID
    /// is detached at release_task, after the exit's wake-up).
    func reapLocked(_ child: ThreadGroup, waited: Bool = false) {
        if let parent = child.parent {
            parent.children.removeAll { $0 === child }
            if waited {
                let (user, system) = child.totalCPUTime
                parent.lock.withLock { _ in
                    parent.childrenUserTime = parent.childrenUserTime.addingSaturating(user)
                    parent.childrenSystemTime = parent.childrenSystemTime.addingSaturating(system)
                }
            }
        }
        child.parent = nil
        child.isZombie = false
        pidNamespace.release(groupID: child.id)
    }

    private func deliver(_ notices: ExitNotices) {
        for (group, info) in notices.signals { try? group.send(info) }
        for task in notices.waiters { task.waiter.notify() }
        for child in notices.reaped { child.pidfdWaiters.notify(PidFile.reapedEvents) }
    }
}

extension ThreadGroup {
    /// SIGCHLD's siginfo for this exited group (CLD_EXITED, CLD_KILLED,
    /// CLD_DUMPED): si_pid, si_uid (the real UID), si_status, and
    /// si_utime/si_stime in clock ticks.
    func childExitInfo(signal: Signal) -> SignalInfo? {
        guard let reason = lock.withLock({ _ in exitReason }) else { return nil }
        let (user, system) = totalCPUTime
        return SignalInfo(child: signal, code: reason.childCode, pid: id, uid: leader?.credentials.realUID ?? 0,
                          status: reason.childStatus, userTime: user, systemTime: system)
    }
}

extension ExitReason {
    /// The si_code a waiter and SIGCHLD report.
    var childCode: Int32 {
        switch self {
        case .exited: LinuxProcess.CLD_EXITED
        case .killed(_, let core): core ? LinuxProcess.CLD_DUMPED : LinuxProcess.CLD_KILLED
        }
    }

    /// si_status: the exit code, or the signal that killed.
    var childStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .killed(let signal, _): signal
        }
    }
}

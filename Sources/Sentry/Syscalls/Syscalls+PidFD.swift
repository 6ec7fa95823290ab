/// pidfd_open, pidfd_send_signal, pidfd_getfd (kernel/pid.c,
/// kernel/signal.c); the file is PidFD/PidFile.swift. A pidfd names a
/// process; pidfds for single threads (PIDFD_THREAD) are not made.
extension SyscallTable {
    mutating func registerPidFD() {
        register(424, PidFDSyscalls.pidfdSendSignal)
        register(434, PidFDSyscalls.pidfdOpen)
        register(438, PidFDSyscalls.pidfdGetfd)
    }
}

enum PidFDSyscalls {
    /// pidfd_open(pid, flags): EINVAL for other flags or pid <= 0, ESRCH
    /// for no such task, ENOENT for a thread that does not lead its process
    /// (Linux since pidfs; EINVAL before 6.9).
    static func pidfdOpen(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let pid = args.int(0), flags = args.uint(1)
        guard flags & ~LinuxProcess.PIDFD_NONBLOCK == 0, pid > 0 else { throw .einval }
        guard let namespace = task.kernel?.pidNamespace else { throw .esrch }
        guard let group = namespace.threadGroup(pid) else {
            if namespace.task(pid) != nil { throw .enoent }
            throw .esrch
        }
        return Int64(try install(PidFile(target: group, flags: flags), in: task))
    }

    /// A new pidfd in `task`'s table, close-on-exec as every pidfd is.
    static func install(_ file: PidFile, in task: Task) throws(SyscallError) -> Int32 {
        try task.fdTable.install(file, closeOnExec: true, limit: task.fileDescriptorLimit)
    }

    /// The process a pidfd names: EBADF for no descriptor or another kind of file.
    static func target(of fd: Int32, in task: Task) throws(SyscallError) -> (file: PidFile, group: ThreadGroup) {
        guard let file = try task.fdTable.get(fd) as? PidFile, let group = file.target else { throw .ebadf }
        return (file, group)
    }

    /// pidfd_send_signal(pidfd, sig, info, flags): the flags first (one
    /// scope at most), then the descriptor, then a caller's siginfo (EINVAL
    /// when its si_signo is not `sig`; only the process's own leader thread
    /// may claim a kernel or tkill origin, EPERM), then ESRCH once the
    /// process is reaped. A zombie takes the signal and ignores it.
    static func pidfdSendSignal(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let fd = args.int(0), signal = Signal(rawValue: args.int(1)), address = args.pointer(2), flags = args.uint(3)
        let scopes = LinuxProcess.PIDFD_SIGNAL_THREAD | LinuxProcess.PIDFD_SIGNAL_THREAD_GROUP
            | LinuxProcess.PIDFD_SIGNAL_PROCESS_GROUP
        guard flags & ~scopes == 0, flags.nonzeroBitCount <= 1 else { throw .einval }
        let (_, group) = try target(of: fd, in: task)
        let info: SignalInfo
        if address != 0 {
            let raw = try task.copyIn(RawSignalInfo.self, from: address)
            guard raw.signo == signal.rawValue else { throw .einval }
            if Signals.claimsKernelOrigin(raw)
                && (task.id != group.id || flags == LinuxProcess.PIDFD_SIGNAL_PROCESS_GROUP) {
                throw .eperm
            }
            info = SignalInfo(raw, signal: signal)
        } else {
            let code = flags == LinuxProcess.PIDFD_SIGNAL_THREAD ? LinuxSignal.SI_TKILL : LinuxSignal.SI_USER
            info = SignalInfo(signal: signal, code: code, senderPID: task.processID, senderUID: task.credentials.realUID)
        }
        let targets: [ThreadGroup]
        if flags == LinuxProcess.PIDFD_SIGNAL_PROCESS_GROUP {
            // The process group named by the process's PID (kill_pgrp_info).
            targets = task.kernel?.pidNamespace.allThreadGroups.filter { $0.processGroupID == group.id } ?? []
        } else {
            targets = group.pidfdState == .reaped ? [] : [group]
        }
        guard !targets.isEmpty else { throw .esrch }
        guard signal.rawValue == 0 || signal.isValid else { throw .einval }
        let permitted = targets.filter { task.maySignal($0, signal: signal) }
        if permitted.isEmpty { throw .eperm }
        guard signal.rawValue != 0 else { return 0 }
        for target in permitted {
            if flags == LinuxProcess.PIDFD_SIGNAL_THREAD {
                // The leader thread itself; once it has exited the signal goes nowhere.
                guard let leader = target.leader, target.members.contains(where: { $0 === leader }) else { continue }
                try target.send(info, to: leader, from: task)
            } else {
                try target.send(info, from: task)
            }
        }
        return 0
    }

    /// pidfd_getfd(pidfd, targetfd, flags): EINVAL for any flag, EBADF for
    /// a descriptor that is no pidfd, ESRCH for a process that has exited
    /// (its descriptors are closed), EPERM unless the caller may trace it
    /// (`mayTrace`), EBADF for no `targetfd` there. The copy shares the
    /// open file description and is close-on-exec.
    static func pidfdGetfd(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let fd = args.int(0), targetFD = args.int(1), flags = args.uint(2)
        guard flags == 0 else { throw .einval }
        let (_, group) = try target(of: fd, in: task)
        guard group.pidfdState == .running, let owner = group.leader ?? group.members.first else { throw .esrch }
        guard task.mayTrace(owner) else { throw .eperm }
        let file = try owner.fdTable.get(targetFD)
        return Int64(try task.fdTable.install(file, closeOnExec: true, limit: task.fileDescriptorLimit))
    }
}

extension Task {
    /// ptrace_may_access with PTRACE_MODE_REALCREDS: a thread of the same
    /// process; else the caller's real UID and GID are every UID and GID of
    /// the target's, or the caller has CAP_SYS_PTRACE. (The sandbox has no
    /// Yama or dumpable restriction.)
    func mayTrace(_ target: Task) -> Bool {
        if target.threadGroup === threadGroup { return true }
        let caller = credentials, other = target.credentials
        let sameUser = [other.realUID, other.effectiveUID, other.savedUID].allSatisfy { $0 == caller.realUID }
            && [other.realGID, other.effectiveGID, other.savedGID].allSatisfy { $0 == caller.realGID }
        return sameUser || caller.hasCapability(LinuxProcess.CAP_SYS_PTRACE)
    }
}

/// Process groups and sessions: setpgid and setsid (getpgid, getpgrp and
/// getsid are with the other identity queries in Syscalls+Process.swift).
extension SyscallTable {
    mutating func registerProcessGroup() {
        register(109, ProcessGroups.setpgid)
        register(112, ProcessGroups.setsid)
    }
}

enum ProcessGroups {
    /// setpgid(2), in Linux's order: EINVAL for a negative group; ESRCH for
    /// no such process; EINVAL for a thread that is not its process's
    /// leader; for a child of the caller, EPERM in another session and
    /// EACCES once it has exec'd; ESRCH for anyone else but the caller;
    /// EPERM for a session leader, and for joining a group that does not
    /// exist in the caller's session.
    static func setpgid(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let caller = task.threadGroup, let kernel = task.kernel else { throw .esrch }
        let namespace = kernel.pidNamespace
        let pid = args.int(0) == 0 ? caller.id : args.int(0)
        let processGroup = args.int(1) == 0 ? pid : args.int(1)
        guard processGroup >= 0 else { throw .einval }
        try kernel.processTree.withLock { _ throws(SyscallError) in
            guard let target = namespace.task(pid), let group = target.threadGroup, !group.isZombie else {
                throw .esrch
            }
            guard group.leader === target else { throw .einval }
            let session = caller.sessionID
            if group.parent === caller {
                guard group.sessionID == session else { throw .eperm }
                guard group.lock.withLock({ _ in group.jobControl.forkedWithoutExec }) else { throw .eacces }
            } else if group !== caller {
                throw .esrch
            }
            guard !group.isSessionLeader else { throw .eperm }
            if processGroup != pid {
                guard let member = ThreadGroup.processGroupExists(processGroup, in: namespace),
                      member.sessionID == session else { throw .eperm }
            }
            group.processGroupID = processGroup
        }
        return 0
    }

    /// setsid(2): EPERM for a session leader, and for a process whose ID
    /// already names a process group (its own, as a group leader, or one
    /// whose leader has gone); else the caller leads a new session and
    /// group with its ID, and has no controlling terminal.
    static func setsid(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let caller = task.threadGroup, let kernel = task.kernel else { throw .esrch }
        let namespace = kernel.pidNamespace
        try kernel.processTree.withLock { _ throws(SyscallError) in
            guard !caller.isSessionLeader else { throw .eperm }
            guard ThreadGroup.processGroupExists(caller.id, in: namespace) == nil else { throw .eperm }
            caller.becomeSessionLeader()
        }
        return Int64(caller.id)
    }
}

/// Process groups and sessions, derived from the thread groups' IDs (each
/// process names its group and session; nothing else is kept, so nothing
/// else is saved). setpgid and setsid change them under the PID namespace's
/// `processGroupLock`.
extension ThreadGroup {
    /// Whether the process leads its session (Linux's signal->leader): it
    /// called setsid, or it is the container's init, which runc makes one.
    var isSessionLeader: Bool { lock.withLock { _ in storedSessionID == id } }

    /// Whether some live process is in process group `id`.
    static func processGroupExists(_ id: Int32, in namespace: PIDNamespace) -> ThreadGroup? {
        namespace.allThreadGroups.first { !$0.finished && $0.processGroupID == id }
    }

    /// will_become_orphaned_pgrp: no member of the process's group has a
    /// parent in another group of the same session, so no shell is left
    /// to continue it after a stop from the terminal.
    var isProcessGroupOrphaned: Bool {
        guard let namespace = kernel?.pidNamespace else { return true }
        let group = processGroupID
        for member in namespace.allThreadGroups where !member.finished && member.processGroupID == group {
            guard let parent = member.parent, !parent.finished else { continue }
            if parent.processGroupID != group && parent.sessionID == member.sessionID { return false }
        }
        return true
    }

    /// setsid's change: the process leads a new session and a new process group.
    func becomeSessionLeader() {
        lock.withLock { _ in
            storedSessionID = id
            storedProcessGroupID = id
        }
    }
}

extension ThreadGroup {
    /// An exec ends the time in which the parent may still move the process
    /// to another group (PF_FORKNOEXEC cleared).
    func execed() {
        lock.withLock { _ in jobControl.forkedWithoutExec = false }
    }
}

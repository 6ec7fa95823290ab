/// Process groups and sessions, derived from the thread groups' IDs (each
/// process names its group and session; nothing else is kept, so nothing
/// else is saved). setpgid and setsid change them under the kernel's
/// `processTree` lock, Linux's tasklist_lock.
extension ThreadGroup {
    /// Whether the process leads its session (Linux's signal->leader): it
    /// called setsid, or it is the container's init, which runc makes one.
    var isSessionLeader: Bool { lock.withLock { _ in storedSessionID == id } }

    /// A process in process group `id` (a zombie still is, until reaped).
    static func processGroupExists(_ id: Int32, in namespace: PIDNamespace) -> ThreadGroup? {
        namespace.allThreadGroups.first { $0.processGroupID == id }
    }

    /// will_become_orphaned_pgrp: no member of the process's group has a
    /// parent in another group of the same session, so no shell is left
    /// to continue it after a stop from the terminal.
    var isProcessGroupOrphaned: Bool {
        guard let namespace = kernel?.pidNamespace else { return true }
        let group = processGroupID
        let members = namespace.allThreadGroups.filter { $0.processGroupID == group }
        return withProcessTree {
            !members.contains { member in
                guard !member.isZombie, let parent = member.parent, !parent.isZombie else { return false }
                return parent.processGroupID != group && parent.sessionID == member.sessionID
            }
        }
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
    /// fork's child: in its parent's process group and session, and not
    /// exec'd yet (PF_FORKNOEXEC), so the parent may still move it.
    func inheritJobControl(from parent: ThreadGroup) {
        let (group, session) = parent.lock.withLock { _ in (parent.storedProcessGroupID, parent.storedSessionID) }
        lock.withLock { _ in
            storedProcessGroupID = group
            storedSessionID = session
            jobControl.forkedWithoutExec = true
        }
    }

    /// An exec ends the time in which the parent may still move the process
    /// to another group (PF_FORKNOEXEC cleared).
    func execed() {
        lock.withLock { _ in jobControl.forkedWithoutExec = false }
    }
}

import State
import Synchronization

/// A host pseudo-terminal a container process has as its terminal (the pty
/// slave runsc made for a process with `terminal: true`, whose master went
/// over the console socket), as gVisor's host TTY: the host's line discipline
/// does echo, canonical mode, termios and the window size; the Sentry keeps
/// what Linux's tty_struct keeps for job control, which the host cannot know:
/// the session the terminal controls and its foreground process group, both
/// IDs in the container's PID namespace. A process's controlling terminal is
/// the one whose session is its own (a session has at most one, and a
/// terminal at most one session, so nothing is kept on the process).
public final class HostTerminal: Savable, @unchecked Sendable {
    public static let savedTypeName = "hostfs.Terminal"
    public static let notSaved: Set<String> = ["lock"]
    public static let savedAs: [String: String] = ["storedSession": "session", "storedForeground": "foreground"]

    // Guarded by `lock`, a leaf.
    private let lock = Mutex<Void>(())
    /// 0: the terminal controls no session.
    private var storedSession: Int32 = 0
    /// 0: no foreground process group.
    private var storedForeground: Int32 = 0

    public init() {}

    /// The session this terminal controls and its foreground process group (0 for none).
    public var owner: (session: Int32, foreground: Int32) {
        lock.withLock { _ in (storedSession, storedForeground) }
    }

    /// __proc_set_tty: the terminal becomes `group`'s session's controlling terminal, its process group the foreground.
    public func becomeControllingTerminal(of group: ThreadGroup) {
        let (session, processGroup) = (group.sessionID, group.processGroupID)
        lock.withLock { _ in
            storedSession = session
            storedForeground = processGroup
        }
    }

    /// Whether this is `group`'s controlling terminal (Linux's current->signal->tty == tty).
    public func controls(_ group: ThreadGroup) -> Bool {
        let session = group.sessionID
        return lock.withLock { _ in storedSession != 0 && storedSession == session }
    }

    func setForeground(_ processGroup: Int32) {
        lock.withLock { _ in storedForeground = processGroup }
    }

    public func save(to sink: inout SaveSink) throws {
        let (session, foreground) = owner
        try sink.save("session", session)
        try sink.save("foreground", foreground)
    }

    public func load(from source: inout LoadSource) throws {
        storedSession = try source.load("session")
        storedForeground = try source.load("foreground")
        for (name, value) in [("session", storedSession), ("foreground", storedForeground)] where value != 0 {
            try ImageValidation.processID(value, field: name)
        }
    }
}

/// Job control on the terminal (drivers/tty/tty_jobctrl.c).
extension HostTerminal {
    /// __tty_check_change: a process of the terminal's session outside its
    /// foreground group that reads (SIGTTIN), or changes the terminal or
    /// writes with TOSTOP set (SIGTTOU), has its process group sent the
    /// signal and the call restarted after it; EIO instead when the signal
    /// is ignored or blocked (SIGTTIN only: SIGTTOU then lets the call go on)
    /// or the group is orphaned.
    func checkChange(_ task: Task, signal: Signal) throws(SyscallError) {
        guard let group = task.threadGroup, controls(group) else { return }
        let foreground = owner.foreground
        let processGroup = group.processGroupID
        guard foreground != 0, processGroup != foreground else { return }
        if task.signalMask.contains(signal)
            || group.signalHandlers.action(for: signal).handler == SignalAction.ignoreHandler {
            if signal == .terminalInput { throw .eio }
            return
        }
        if group.isProcessGroupOrphaned { throw .eio }
        signalProcessGroup(processGroup, signal, in: task.kernel?.pidNamespace)
        throw .erestartsys
    }

    /// Whether `task` is in the terminal's session but not in its foreground group.
    func isBackground(_ task: Task) -> Bool {
        guard let group = task.threadGroup, controls(group) else { return false }
        let foreground = owner.foreground
        return foreground != 0 && group.processGroupID != foreground
    }

    /// kill_pgrp with the kernel as sender (SI_KERNEL), as the terminal's signals are.
    func signalProcessGroup(_ processGroup: Int32, _ signal: Signal, in namespace: PIDNamespace?) {
        guard let namespace else { return }
        let info = SignalInfo(signal: signal, code: LinuxSignal.SI_KERNEL, senderPID: 0, senderUID: 0)
        for member in namespace.allThreadGroups where member.processGroupID == processGroup {
            try? member.send(info)
        }
    }

    /// Sends `signal` to the foreground process group, as a key the host's
    /// line discipline saw (^C, ^Z, ^\) or a window-size change would;
    /// false when the terminal has no foreground group.
    public func signalForeground(_ signal: Signal, in namespace: PIDNamespace) -> Bool {
        let foreground = owner.foreground
        guard foreground != 0, ThreadGroup.processGroupExists(foreground, in: namespace) != nil else { return false }
        signalProcessGroup(foreground, signal, in: namespace)
        return true
    }
}

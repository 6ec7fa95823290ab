import State

/// A pidfd (kernel/pid.c, fs/pidfs.c): a descriptor for one process,
/// made by pidfd_open or clone's CLONE_PIDFD. It names the process itself,
/// not its number: once the process is reaped its PID may be reused, and
/// the pidfd still names the gone process (ESRCH to signals). It is
/// readable once the process has exited (a zombie), and hangs up as well
/// once it is reaped (pidfd_poll). Read and write are EINVAL. The target
/// is saved, so after a restore the pidfd names the same process; pollers
/// register again.
public final class PidFile: AnonymousFile, @unchecked Sendable { // `target` is set at creation or load only
    override public class var savedTypeName: String { "pidfd.File" }

    /// What a poller is woken with when the process exits.
    static let exitedEvents: PollEvents = PollEvents.readable
    /// What a poller is woken with when the process is reaped: a poller
    /// waiting only for POLLHUP wakes then, not at the exit.
    static let reapedEvents: PollEvents = exitedEvents.union(.hangUp)

    public private(set) var target: ThreadGroup?

    public required init() { super.init() }

    /// Opened read-write and close-on-exec always (pidfd_prepare); `flags` adds O_NONBLOCK.
    init(target: ThreadGroup, flags: UInt32) {
        self.target = target
        super.init(flags: flags)
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("target", target)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        target = try source.load("target")
    }

    /// pidfd_poll: POLLIN once the thread group is empty, POLLHUP too once
    /// it is reaped.
    override public func readiness(for mask: PollEvents) -> PollEvents {
        guard let target else { return [] }
        var ready: PollEvents = []
        switch target.pidfdState {
        case .running: break
        case .exited: ready = Self.exitedEvents
        case .reaped: ready = Self.reapedEvents
        }
        return ready.intersection(mask.union(.unmaskable))
    }

    override public var supportsPoll: Bool { true }

    /// What fdinfo adds (pidfd_show_fdinfo): the PID while the process is
    /// not reaped (a zombie's too), -1 after; NSpid the same, as the
    /// container has one PID namespace.
    var fdInformation: String {
        let pid = target.map { $0.pidfdState == .reaped ? -1 : $0.id } ?? -1
        return "Pid:\t\(pid)\nNSpid:\t\(pid)\n"
    }

    override public func eventRegister(_ entry: WaitEntry) { target?.pidfdWaiters.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { target?.pidfdWaiters.unregister(entry) }
}

/// A process as a pidfd sees it.
enum PidFDState {
    /// Some task of it still runs.
    case running
    /// Its last task is gone; it is a zombie (or is about to become one).
    case exited
    /// Reaped: its PID is released.
    case reaped
}

extension ThreadGroup {
    /// Where the process is in its life, as a pidfd sees it. Reaped is
    /// told apart by the PID namespace no longer naming this group.
    var pidfdState: PidFDState {
        guard let kernel else { return .reaped }
        if kernel.pidNamespace.threadGroup(id) !== self { return .reaped }
        return lock.withLock { _ in finished } ? .exited : .running
    }
}

import State

/// What restart_syscall(2) resumes after a call returned ERESTART_RESTARTBLOCK
/// (Linux's task->restart_block): a sleep keeps its absolute deadline, so a
/// nanosleep interrupted by a checkpoint sleeps only the time that remained.
public enum RestartBlock: Equatable, Sendable, SavableValue {
    /// Sleep on `clock` until `deadline` (ns); write what remains to `remainder` if interrupted again.
    case sleep(clock: Int32, deadline: Int64, remainder: UInt64)
    /// poll(2) again on the `count` pollfds at `fds`, until CLOCK_MONOTONIC
    /// reads `deadline` (ns), or without end when nil (Linux's do_restart_poll).
    case poll(fds: UInt64, count: UInt32, deadline: Int64?)
    /// epoll_wait(2) again on `epfd` into `events` (at most `maximum`), until
    /// CLOCK_MONOTONIC reads `deadline` (ns), or without end when nil.
    case epollWait(epfd: Int32, events: UInt64, maximum: Int32, deadline: Int64?)
    /// A FUTEX_WAIT_REQUEUE_PI already requeued: wait for the PI futex at
    /// `address` as FUTEX_LOCK_PI does, until `deadline` (ns, absolute) on `clock`.
    case futexLockPI(address: UInt64, shared: Bool, clock: Int32, deadline: Int64?)

    public static let stateKind = StateKind.enumeration("sentry.RestartBlock")

    public func saveState(to writer: inout StateWriter) throws {
        switch self {
        case .sleep(let clock, let deadline, let remainder):
            try writer.writeEnumCase("sleep", clock, deadline, remainder)
        case .poll(let fds, let count, let deadline):
            try writer.writeEnumCase("poll", fds, count, deadline)
        case .epollWait(let epfd, let events, let maximum, let deadline):
            try writer.writeEnumCase("epollWait", epfd, events, maximum, deadline)
        case .futexLockPI(let address, let shared, let clock, let deadline):
            try writer.writeEnumCase("futexLockPI", address, shared, clock, deadline)
        }
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> RestartBlock {
        switch state {
        case .enumCase("sleep", let payload) where payload.count == 3:
            return .sleep(clock: try context.value(payload[0]), deadline: try context.value(payload[1]),
                          remainder: try context.value(payload[2]))
        case .enumCase("poll", let payload) where payload.count == 3:
            return .poll(fds: try context.value(payload[0]), count: try context.value(payload[1]),
                         deadline: try context.value(payload[2]))
        case .enumCase("epollWait", let payload) where payload.count == 4:
            return .epollWait(epfd: try context.value(payload[0]), events: try context.value(payload[1]),
                              maximum: try context.value(payload[2]), deadline: try context.value(payload[3]))
        case .enumCase("futexLockPI", let payload) where payload.count == 4:
            let clock: Int32 = try context.value(payload[2])
            guard clock == Time.realtime || clock == Time.monotonic else {
                throw StateError.invalidValue("futexLockPI on clock \(clock)")
            }
            return .futexLockPI(address: try context.value(payload[0]), shared: try context.value(payload[1]),
                                clock: clock, deadline: try context.value(payload[3]))
        default:
            throw StateError.invalidValue("bad RestartBlock \(state)")
        }
    }
}

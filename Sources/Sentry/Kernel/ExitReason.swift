import State

/// How a thread group ended, as wait(2) and the runtime report it.
public enum ExitReason: Equatable, Sendable, SavableValue {
    case exited(code: Int32)
    case killed(signal: Int32, coreDumped: Bool)

    /// The wait status Linux encodes (WIFEXITED/WIFSIGNALED/WCOREDUMP).
    public var waitStatus: Int32 {
        switch self {
        case .exited(let code): (code & 0xff) << 8
        case .killed(let signal, let core): (signal & 0x7f) | (core ? 0x80 : 0)
        }
    }

    /// What a shell (and `runsc run`) reports: the code, or 128+N for signal N.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): code & 0xff
        case .killed(let signal, _): 128 + signal
        }
    }

    public static let stateKind = StateKind.enumeration("sentry.ExitReason")

    public func saveState(to writer: inout StateWriter) throws {
        switch self {
        case .exited(let code): try writer.writeEnumCase("exited", code)
        case .killed(let signal, let core): try writer.writeEnumCase("killed", signal, core)
        }
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> ExitReason {
        switch state {
        case .enumCase("exited", let payload) where payload.count == 1:
            return .exited(code: try context.value(payload[0]))
        case .enumCase("killed", let payload) where payload.count == 2:
            return .killed(signal: try context.value(payload[0]), coreDumped: try context.value(payload[1]))
        default:
            throw StateError.invalidValue("bad ExitReason \(state)")
        }
    }
}

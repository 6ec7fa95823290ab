/// A failure of the platform: which operation failed and the host errno it
/// failed with, so the Sentry can tell a dead stub (ESRCH) from a bug.
public struct PlatformError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What the platform was doing when the failure happened.
    public enum Operation: String, Sendable {
        case createStub
        case attach
        case detach
        case setOptions
        case getRegisters
        case setRegisters
        case getFloatingPoint
        case setFloatingPoint
        case resume
        case wait
        case getSignalInfo
        case inject
        /// An operation was called on a thread that is not the stub thread's tracer.
        case ownership
        /// An argument was rejected before reaching the host (alignment, the stub page).
        case validate
        case startThread
    }

    public var operation: Operation
    /// The host errno (positive), e.g. ESRCH when the stub is gone.
    public var errno: Int32
    /// What was unexpected, when the errno alone does not say.
    public var detail: String?

    public init(_ operation: Operation, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// Wraps a CShim result (`-errno` on failure).
    static func check(_ result: Int32, _ operation: Operation) throws(PlatformError) {
        if result < 0 { throw PlatformError(operation, errno: -result) }
    }

    public var description: String {
        var text = "platform: \(operation.rawValue) failed: errno \(errno)"
        if let detail { text += " (\(detail))" }
        return text
    }
}

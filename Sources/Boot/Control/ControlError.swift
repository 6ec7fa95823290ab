import Glibc

/// Why talking over a control socket failed, in words a `runsc` user can act on.
public enum ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No sandbox listens at the socket (ENOENT, ECONNREFUSED): it is gone or never got that far.
    case notListening(socket: String, errno: Int32)
    /// A host call on the socket failed.
    case io(operation: String, errno: Int32)
    /// The peer did not answer within the timeout.
    case timedOut(operation: String, seconds: Int)
    /// The peer closed the connection before a whole frame arrived.
    case closed
    /// A frame's length is outside 1...maximumFrameSize.
    case badFrameLength(Int)
    /// A frame's JSON could not be decoded or encoded.
    case badMessage(String)
    /// The peer speaks another protocol version.
    case versionMismatch(ours: Int, theirs: Int)

    public var description: String {
        switch self {
        case .notListening(let socket, let code):
            "no sandbox answers at \(socket): \(String(cString: strerror(code)))"
        case .io(let operation, let code):
            "control socket \(operation): \(String(cString: strerror(code)))"
        case .timedOut(let operation, let seconds):
            "the sandbox did not answer (\(operation)) within \(seconds) s"
        case .closed:
            "the sandbox closed the control connection without answering"
        case .badFrameLength(let length):
            "control message of \(length) bytes refused (limit \(ControlProtocol.maximumFrameSize))"
        case .badMessage(let reason):
            "malformed control message: \(reason)"
        case .versionMismatch(let ours, let theirs):
            "control protocol version \(theirs) from the other side, this runsc speaks \(ours)"
        }
    }
}

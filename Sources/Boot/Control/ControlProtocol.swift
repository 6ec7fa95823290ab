import OCI

/// The control protocol between the `runsc` command line and a sandbox process
/// (`runsc boot`). One request per connection on the container's control
/// socket: the client writes one frame, the sandbox answers with one frame and
/// closes. A frame is a 4-byte big-endian length and that many bytes of JSON
/// (see `ControlFrame`).
///
/// Versioned so that a `runsc` and a sandbox from different builds refuse each
/// other clearly instead of misreading: both sides put `ControlProtocol.version`
/// in every envelope and the sandbox answers a request of another version with
/// `.failure(.unsupportedVersion)`. Adding a request case is compatible (an old
/// sandbox fails to decode it and says so); changing a case's payload is not
/// and needs a version bump.
public enum ControlProtocol {
    public static let version = 1
    /// The control socket's file name in the container's state directory.
    public static let socketName = "control.sock"
    /// The largest frame either side accepts, so a corrupt length cannot make us allocate gigabytes.
    public static let maximumFrameSize = 1 << 20
}

/// What the command line asks of a sandbox.
public enum ControlRequest: Codable, Sendable, Equatable {
    /// The container's OCI state and, once it has exited, its exit status.
    case state
    /// created → running: start the init process.
    case start
    /// Deliver `signal` to init's thread group, or to every process with `all`.
    case signal(signal: Int32, all: Bool)
    /// Answer when init has exited (at once if it has), with its exit status.
    case wait
    /// `runsc delete`: kill what still runs, answer, and end the sandbox process.
    case shutdown
    /// `runsc checkpoint`: save the kernel to an image, then stop the
    /// container or leave it running; answered with `.checkpointed`.
    case checkpoint(CheckpointRequest)
    /// Restore into this sandbox (reserved: restore currently boots a new
    /// sandbox from the image, so this is answered with `.notSupported`).
    case restore(RestoreRequest)

    /// A short name for logs and errors.
    public var name: String {
        switch self {
        case .state: "state"
        case .start: "start"
        case .signal: "signal"
        case .wait: "wait"
        case .shutdown: "shutdown"
        case .checkpoint: "checkpoint"
        case .restore: "restore"
        }
    }
}

/// The arguments of `runsc checkpoint` as the sandbox needs them.
public struct CheckpointRequest: Codable, Sendable, Equatable {
    /// The image directory, absolute (the sandbox's working directory is not the caller's).
    public var imagePath: String
    /// `none`, `lz4` or `zstd`.
    public var compression: String
    /// Resume the container after saving instead of stopping it.
    public var leaveRunning: Bool

    public init(imagePath: String, compression: String, leaveRunning: Bool) {
        self.imagePath = imagePath
        self.compression = compression
        self.leaveRunning = leaveRunning
    }
}

/// Reserved for restoring an image into an existing sandbox.
public struct RestoreRequest: Codable, Sendable, Equatable {
    /// The image directory, absolute.
    public var imagePath: String

    public init(imagePath: String) {
        self.imagePath = imagePath
    }
}

/// A sandbox's answer.
public enum ControlResponse: Codable, Sendable, Equatable {
    /// Done (start, signal, shutdown).
    case ok
    /// The answer to `.state`.
    case state(SandboxState)
    /// The answer to `.wait`: init has exited.
    case exited(ExitStatus)
    /// The answer to `.checkpoint`: the image is complete.
    case checkpointed(CheckpointSummary)
    /// The request was refused or failed; nothing was changed unless the message says so.
    case failure(ControlFailure)
}

/// The container's state as the sandbox knows it.
public struct SandboxState: Codable, Sendable, Equatable {
    public var container: ContainerState
    /// Set once init has exited.
    public var exit: ExitStatus?

    public init(container: ContainerState, exit: ExitStatus? = nil) {
        self.container = container
        self.exit = exit
    }
}

/// How init ended: exactly one of `code` and `signal` is set.
public struct ExitStatus: Codable, Sendable, Equatable, CustomStringConvertible {
    public var code: Int32?
    public var signal: Int32?

    public static func exited(_ code: Int32) -> ExitStatus { ExitStatus(code: code, signal: nil) }
    public static func killed(_ signal: Int32) -> ExitStatus { ExitStatus(code: nil, signal: signal) }

    /// What a shell reports, and `runsc run` and `runsc wait` with it: the code, or 128+N for signal N.
    public var shellStatus: Int32 {
        if let signal { return 128 + signal }
        return (code ?? 0) & 0xff
    }

    public var description: String {
        if let signal { return "killed by signal \(signal)" }
        return "exited with status \(code ?? 0)"
    }
}

/// Why a request failed.
public struct ControlFailure: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// The sandbox does not implement this request (yet).
        case notSupported
        /// The request does not fit the container's status (start twice, signal a stopped container).
        case invalidState
        /// The request or envelope could not be understood.
        case badRequest
        /// The request speaks another protocol version.
        case unsupportedVersion
        /// The sandbox tried and failed.
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// One frame's contents: the protocol version and the payload.
public struct ControlEnvelope<Payload: Codable & Sendable>: Codable, Sendable {
    public var version: Int
    public var payload: Payload

    public init(_ payload: Payload, version: Int = ControlProtocol.version) {
        self.version = version
        self.payload = payload
    }
}

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
    /// `runsc exec`: start a new process in the running container, its stdio
    /// the three descriptors sent with the request; answered with `.started`.
    case exec(ExecRequest)
    /// Answer when process `pid`, which `exec` started, has exited (at once if
    /// it has), with its exit status; the status is forgotten once given.
    case waitProcess(pid: Int32)
    /// Deliver `signal` to process `pid` (runsc exec forwards what it receives).
    case signalProcess(pid: Int32, signal: Int32)
    /// `runsc ps`: the container's processes; answered with `.processes`.
    case processes
    /// `runsc pause`: every task stops until `resume`.
    case pause
    /// `runsc resume`.
    case resume
    /// `runsc events --stats`: the container's CPU, memory and process counts; answered with `.statistics`.
    case statistics

    /// Whether the answer may take as long as a process runs.
    public var waitsForExit: Bool {
        switch self {
        case .wait, .waitProcess: true
        default: false
        }
    }

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
        case .exec: "exec"
        case .waitProcess: "wait --pid"
        case .signalProcess: "signal process"
        case .processes: "ps"
        case .pause: "pause"
        case .resume: "resume"
        case .statistics: "events --stats"
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

/// What `runsc exec` runs: an OCI process (the command line's options
/// already merged with the container's spec, as runc merges them).
public struct ExecRequest: Codable, Sendable, Equatable {
    public var process: Spec.Process

    public init(process: Spec.Process) {
        self.process = process
    }
}

/// One process of the container, as gVisor's `runsc ps` shows it.
public struct ContainerProcess: Codable, Sendable, Equatable {
    public var uid: UInt32
    public var pid: Int32
    /// 0 for init and for processes `runsc exec` started (their parent is outside the container).
    public var ppid: Int32
    public var threads: [Int32]
    /// CPU use in percent of the process's lifetime, when its start is known.
    public var c: Int32
    public var tty: String
    /// Start time: "HH:MM" today, "MonDD" before; "?" when not known.
    public var stime: String
    /// CPU time (user and system), as Go prints a duration.
    public var time: String
    /// The command name (comm).
    public var cmd: String

    public init(uid: UInt32, pid: Int32, ppid: Int32, threads: [Int32], c: Int32, tty: String, stime: String,
                time: String, cmd: String) {
        self.uid = uid
        self.pid = pid
        self.ppid = ppid
        self.threads = threads
        self.c = c
        self.tty = tty
        self.stime = stime
        self.time = time
        self.cmd = cmd
    }
}

/// A sandbox's answer.
public enum ControlResponse: Codable, Sendable, Equatable {
    /// Done (start, signal, shutdown, pause, resume).
    case ok
    /// The answer to `.state`.
    case state(SandboxState)
    /// The answer to `.wait` (init has exited) and `.waitProcess`.
    case exited(ExitStatus)
    /// The answer to `.checkpoint`: the image is complete.
    case checkpointed(CheckpointSummary)
    /// The answer to `.exec`: the new process's PID in the container.
    case started(pid: Int32)
    /// The answer to `.processes`, by PID.
    case processes([ContainerProcess])
    /// The answer to `.statistics`.
    case statistics(ContainerStatistics)
    /// The request was refused or failed; nothing was changed unless the message says so.
    case failure(ControlFailure)
}

/// What `runsc events --stats` reports, from the Sentry's own accounting.
public struct ContainerStatistics: Codable, Sendable, Equatable {
    /// CPU time of the container's live processes, user and system, in nanoseconds.
    public var cpuUserNanoseconds: UInt64
    public var cpuSystemNanoseconds: UInt64
    /// Bytes of the MemoryFile in use (anonymous, shared and tmpfs memory: what the memory limit covers).
    public var memoryUsage: UInt64
    /// The spec's memory limit, or UInt64.max for none.
    public var memoryLimit: UInt64
    /// The container's processes.
    public var processes: UInt64

    public init(cpuUserNanoseconds: UInt64, cpuSystemNanoseconds: UInt64, memoryUsage: UInt64, memoryLimit: UInt64,
                processes: UInt64) {
        self.cpuUserNanoseconds = cpuUserNanoseconds
        self.cpuSystemNanoseconds = cpuSystemNanoseconds
        self.memoryUsage = memoryUsage
        self.memoryLimit = memoryLimit
        self.processes = processes
    }
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
        /// exec: the command is not in the container (a shell's 127).
        case executableNotFound
        /// exec: the command cannot be executed (a shell's 126).
        case notExecutable
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

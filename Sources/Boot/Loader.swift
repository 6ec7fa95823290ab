import Dispatch
import Glibc
import Logging
import OCI
import Sentry
import Synchronization

/// Turns an OCI bundle into a running sandbox, as gVisor's runsc/boot/loader.go:
/// moves stdio to host FDs 256-258, creates the MemoryFile and the Kernel,
/// derives the init process's credentials, limits and environment from the
/// spec, loads its executable; `run()` starts it and waits for its exit.
/// `Loader.restore` (Loader+Restore.swift) builds the Kernel from a
/// checkpoint image instead, and creates no process.
public final class Loader: @unchecked Sendable {
    // Set in init, read-only afterwards, except `running`.
    public let containerID: String
    /// The kernel, replaced whole by each cycle of the save/restore test mode.
    public var kernel: Kernel { running.withLock { $0.kernel } }
    public var initTask: Task { running.withLock { $0.initTask } }
    /// The container's rootfs on this host; a checkpoint records it so a
    /// restore can move the root filesystem to its new bundle.
    public let rootfs: String
    /// The spec's digest, recorded in images (Checkpoint.swift).
    let specDigest: String
    /// The process of the bundle the container was started from, recorded
    /// in images (a restore compares it with its bundle's: Loader+BundleCheck).
    let processMetadata: String?
    /// The tasks a restored kernel starts with; empty for a fresh boot (init alone starts).
    var restoredTasks: [Task] { running.withLock { $0.restoredTasks } }
    /// The kernel and its tasks. A leaf lock; replaced under `checkpointLock`.
    let running: Mutex<Running>
    /// What built the container, for the save/restore test mode's restores.
    let args: LoaderArgs
    /// The save/restore test mode (`--debug-save-restore-every`), nil when off.
    let saveRestoreCycles: SaveRestoreCycles?
    /// One checkpoint, pause or resume at a time; the value says whether
    /// `runsc pause` holds the kernel paused. Outermost: held while the kernel
    /// pauses and saves, which takes the Sentry's locks (their order is on VFSLock).
    let checkpointLock = Mutex<Bool>(false)
    /// The processes `runsc exec` started, with their exit statuses.
    let execProcesses = ExecProcesses()
    /// When init and each exec'd process started (CLOCK_REALTIME ns), for
    /// `runsc ps`; host-only, so a restored container's are not known. A leaf.
    let startTimes = Mutex<[Int32: Int64]>([:])
    let logger: Logger
    let countSyscalls: Bool
    /// The spec's seccomp profile compiled (Loader+Seccomp), for every process the container starts.
    let seccomp: SeccompFilter?

    /// The kernel, the init task and the tasks to start; a restore gives all its tasks.
    struct Running {
        var kernel: Kernel
        var initTask: Task
        var restoredTasks: [Task]
    }

    /// A Loader over a kernel built elsewhere (a restore).
    init(args: LoaderArgs, restored: RestoredKernel, processMetadata: String?, seccomp: SeccompFilter?, logger: Logger) {
        containerID = args.containerID
        running = Mutex(Running(kernel: restored.kernel, initTask: restored.initTask, restoredTasks: restored.tasks))
        rootfs = args.rootfs
        specDigest = Loader.digest(of: args.spec)
        self.processMetadata = processMetadata
        self.args = args
        self.logger = logger
        countSyscalls = args.configuration.countSyscalls
        saveRestoreCycles = SaveRestoreCycles(args.configuration, logger: logger)
        self.seccomp = seccomp
        if let seccomp { logger.info("seccomp profile enforced on new processes: \(seccomp.rules.count) rules, default action \(seccomp.defaultAction)") }
        watchProcessExits()
    }

    public init(args: LoaderArgs, logger: Logger = Logger(label: "boot")) throws(LoaderError) {
        self.logger = logger
        containerID = args.containerID
        countSyscalls = args.configuration.countSyscalls
        rootfs = args.rootfs
        specDigest = Loader.digest(of: args.spec)
        processMetadata = Loader.processMetadata(args.spec)
        self.args = args
        saveRestoreCycles = SaveRestoreCycles(args.configuration, logger: logger)
        seccomp = try Loader.seccompFilter(args.spec)
        if let seccomp { logger.info("seccomp profile enforced: \(seccomp.rules.count) rules, default action \(seccomp.defaultAction)") }
        guard let process = args.spec.process, let name = process.args.first else {
            throw LoaderError("the spec has no process to run")
        }

        let memoryFile: MemoryFile
        do {
            memoryFile = try MemoryFile.create()
            memoryFile.limit = Loader.memoryLimit(args.spec)
        } catch {
            throw LoaderError("cannot create the memory file: \(error)")
        }
        var kernelLogger = logger
        kernelLogger[metadataKey: "container"] = "\(args.containerID)"
        let kernel = Kernel(memoryFile: memoryFile, hostName: args.spec.hostname ?? "localhost",
                            countSyscalls: args.configuration.countSyscalls, logger: kernelLogger)
        do {
            kernel.vfs = try VirtualFilesystem.makeContainerTree(
                rootfs: args.rootfs, readOnly: args.spec.root?.readonly ?? false, terminal: process.terminal,
                mounts: try Loader.containerMounts(args.spec), proc: KernelProcSource(kernel: kernel))
            try kernel.vfs?.attachMemoryFile(memoryFile)
        } catch let error as LoaderError {
            throw error
        } catch {
            throw LoaderError("cannot build the container's filesystem from \(args.rootfs): \(error)")
        }

        let credentials = Loader.credentials(for: process)
        let limits = try Loader.limits(for: process)
        let files = try Loader.containerFiles(kernel, credentials: credentials)
        let stdio = FDTable()
        // runsc create made the stdio a pty slave for `terminal: true`; init leads its session, and the terminal is its controlling one.
        let terminal = process.terminal && isatty(args.stdioFDs.first ?? -1) == 1 ? HostTerminal() : nil
        for (fd, file) in HostStdioFile.standardFiles(terminal: terminal).enumerated() {
            do {
                try stdio.install(file, at: Int32(fd), closeOnExec: false)
            } catch {
                throw LoaderError("cannot install stdio FD \(fd): \(error)")
            }
        }
        let initTask: Task
        do {
            initTask = try kernel.createProcess(CreateProcessArgs(
                filename: name, argv: process.args, envp: Loader.environment(for: process, files: files),
                workingDirectory: process.cwd, credentials: credentials, limits: limits,
                umask: process.user.umask ?? 0o022, fdTable: stdio, personality: Loader.personality(args.spec)))
        } catch {
            throw LoaderError("cannot create the init process: \(error)")
        }
        initTask.controls.noNewPrivileges = process.noNewPrivileges
        initTask.seccomp = seccomp
        if let terminal, let group = initTask.threadGroup { terminal.becomeControllingTerminal(of: group) }
        running = Mutex(Running(kernel: kernel, initTask: initTask, restoredTasks: []))

        // A write to a closed host pipe (`runsc run ... | head -1`) must be an
        // EPIPE for the container, not a SIGPIPE that kills the sandbox.
        signal(SIGPIPE, SIG_IGN)
        Loader.quietChildStops()
        try Loader.moveStdio(args.stdioFDs)
        watchProcessExits()
    }

    /// The container's files as a process with `credentials` sees them from
    /// the root (for /etc/passwd before the process exists).
    static func containerFiles(_ kernel: Kernel, credentials: Credentials) throws(LoaderError) -> ContainerFiles {
        guard let vfs = kernel.vfs else { throw LoaderError("the kernel has no filesystem") }
        do {
            let root = try vfs.rootPath()
            return ContainerFiles(vfs: vfs, context: PathContext(root: root, workingDirectory: root,
                                                                 credentials: credentials.fileCredentials))
        } catch {
            throw LoaderError("the container's root cannot be used: \(error)")
        }
    }

    /// Signals runsc forwards to the container instead of dying of them.
    static let forwardedSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Starts init and waits for it; returns the exit status a shell would
    /// report (the code, or 128+N when killed by signal N). Signals sent to
    /// this process meanwhile go to the container.
    public func run() throws(LoaderError) -> Int32 {
        let exited = DispatchSemaphore(value: 0)
        let status = ExitBox()
        kernel.onInitExit { [saveRestoreCycles] reason in
            saveRestoreCycles?.finish()
            status.set(reason)
            exited.signal()
        }
        let forwarder = try SignalForwarder(signals: Loader.forwardedSignals) { [self] signal in
            logger.debug("forwarding signal \(signal) to the container")
            try? signalContainer(signal, all: false)
        }
        defer { forwarder.stop() }
        try start()
        exited.wait()
        logSyscallCounts()
        return status.get()?.shellStatus ?? 128 + SIGKILL
    }

    /// SA_NOCLDSTOP on SIGCHLD's default action: every ptrace stop of a stub
    /// would otherwise queue a SIGCHLD notification to this process, a cost
    /// paid on every application syscall. wait4 on the stubs is unaffected.
    static func quietChildStops() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = SIG_DFL
        action.sa_flags = SA_NOCLDSTOP
        sigemptyset(&action.sa_mask)
        sigaction(SIGCHLD, &action, nil)
    }

    /// Logs the count per syscall, most frequent first, when `countSyscalls`
    /// (`--debug`); the sandbox logs them before it tells anyone the
    /// container exited, so that its shutdown cannot cut the list short.
    public func logSyscallCounts() {
        guard countSyscalls else { return }
        for (name, count) in kernel.statistics.summary() {
            logger.debug("syscall \(name): \(count)")
        }
    }
}

/// The init process's exit reason, handed from the task thread to `run()`.
private final class ExitBox: Sendable {
    /// A leaf.
    private let reason = Mutex<ExitReason?>(nil)

    func set(_ value: ExitReason) { reason.withLock { $0 = value } }
    func get() -> ExitReason? { reason.withLock { $0 } }
}

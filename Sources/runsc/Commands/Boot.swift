import ArgumentParser
import Boot
import CShim
import Logging
import OCI
import Platform

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc boot` (hidden): the sandbox process that `create` and `run` spawn.
/// It builds the container, serves its control socket until `delete`, and
/// tells its parent on the ready pipe that it is ready, or why it failed.
struct BootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot", abstract: "Run a container's sandbox (started by create and run).",
        shouldDisplay: false)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The bundle directory, absolute.", valueName: "dir"))
    var bundle: String

    @Option(help: ArgumentHelp("Where to report readiness or the error.", valueName: "fd"))
    var readyFd: Int32

    @Option(help: ArgumentHelp("Restore this checkpoint image instead of starting the bundle's process.",
                               valueName: "dir"))
    var imagePath: String?

    @Option(help: ArgumentHelp("The save/restore test mode's interval in syscalls (see create).", valueName: "N"))
    var debugSaveRestoreEvery: UInt64 = 0

    @Option(help: .hidden)
    var pidNamespaceError: String?

    @Argument(help: ArgumentHelp("The container.", valueName: "container-id"))
    var id: String

    /// With --debug-save-restore-every: a file the sandbox appends its cycle count to when the container ends.
    static let saveRestoreTallyVariable = "RUNSC_DEBUG_SAVE_RESTORE_TALLY"

    /// Test hook, read only under `--debug`: the sandbox traps on purpose this
    /// many milliseconds after it is ready, so a test can see what a fault leaves.
    static let testTrapVariable = "RUNSC_TEST_SENTRY_TRAP_MS"
    /// Test hook, read only under `--debug`: every stub attempts a host syscall
    /// its seccomp filter forbids, so a test sees the filter kill it.
    static let testStubForbiddenCallVariable = "RUNSC_TEST_STUB_FORBIDDEN_CALL"
    /// Benchmark hook, read only under `--debug`: stubs run without their seccomp filter.
    static let testUnfilteredStubsVariable = "RUNSC_TEST_UNFILTERED_STUBS"
    /// Test hook, read only under `--debug`: 300 ms after it is ready, the Sentry makes a host
    /// call its own filter forbids; with the value `kill` the filter kills as
    /// it does without `--debug`, else it logs the call.
    static let testSentryForbiddenCallVariable = "RUNSC_TEST_SENTRY_FORBIDDEN_CALL"
    /// Benchmark hook, read only under `--debug`: the Sentry runs without its host seccomp filter.
    static let testUnfilteredSentryVariable = "RUNSC_TEST_UNFILTERED_SENTRY"

    func run() throws {
        // First, while the process has one thread and has opened nothing of the container's.
        var confinement = Confinement.apply(pidNamespaceError: pidNamespaceError)
        // A fault never dumps the Sentry's address space and always says what failed, on stderr
        // (the log file with --log, see detachFromCallerStdio).
        let process = SandboxProcess.current()
        _ = cshim_install_fatal_signal_report(STDERR_FILENO,
                                              "runsc boot: container \(id): sandbox process \(process?.pid ?? getpid())")
        // Its own session: the terminal's Ctrl-C reaches the foreground runsc,
        // which forwards it; a detached sandbox outlives its parent's session.
        _ = setsid()
        // A write to a closed host pipe must be an EPIPE for the Sentry, not the sandbox's death.
        signal(SIGPIPE, SIG_IGN)
        let booted: Sandbox.Booted
        let callerStdio: CallerStdioReplacement
        do {
            let logger = try global.configure()
            if global.debug, getenv(Self.testStubForbiddenCallVariable) != nil {
                AddressSpace.testForbiddenCall.store(true, ordering: .relaxed)
            }
            if global.debug, getenv(Self.testUnfilteredStubsVariable) != nil {
                AddressSpace.testUnfiltered.store(true, ordering: .relaxed)
            }
            let id = try ContainerID(id)
            let bundle = try Bundle.load(directory: bundle)
            let store = try global.store()
            let tally = getenv(Self.saveRestoreTallyVariable).map { String(cString: $0) }
            // What the sandbox needs of the host's paths, read or opened before it leaves the host's root.
            guard let process else {
                throw RunscError("cannot read this process's start time from /proc/self/stat")
            }
            callerStdio = try CallerStdioReplacement(log: global.log)
            if let tally { try Self.create(tally) }
            // Kept in the sandbox's root, so it must exist before.
            try store.makeRoot()
            var kept = [bundle.rootfs, store.root] + (try Loader.hostMountSources(bundle.spec))
            if let imagePath { kept.append(imagePath) }
            if let tally { kept.append(tally) }
            confinement.confine(keeping: kept)
            confinement.log(to: logger)
            // create made our stdio a pty for the process's terminal: it becomes ours, and its signals the container's.
            let hasTerminal = bundle.spec.process?.terminal == true && isatty(STDIN_FILENO) == 1
            if hasTerminal { Sandbox.takeControllingTerminal(STDIN_FILENO) }
            // The Loader moves what it is given to FDs 256-258 and closes it; our own 0-2 are replaced below.
            let stdio = [dup(0), dup(1), dup(2)]
            guard !stdio.contains(where: { $0 < 0 }) else {
                throw RunscError("cannot duplicate stdio: \(SandboxLauncher.errnoText())")
            }
            let configuration = LoaderArgs.Configuration(
                countSyscalls: global.debug, saveRestoreEvery: debugSaveRestoreEvery,
                saveRestoreDirectory: store.directory(for: id) + "/save-restore",
                saveRestoreTally: tally)
            let args = LoaderArgs(containerID: id.rawValue, spec: bundle.spec, rootfs: bundle.rootfs, stdioFDs: stdio,
                                  configuration: configuration)
            booted = try Sandbox.boot(args: args, id: id, bundle: bundle.directory, store: store,
                                      process: process, logger: logger, restoringFrom: imagePath)
            if hasTerminal { try booted.sandbox.forwardTerminalSignals() }
            try installHostFilter(logger: logger)
        } catch {
            report("\(error)")
            Glibc.exit(1)
        }
        callerStdio.detach()
        report(SandboxLauncher.readyMessage)
        _ = chdir("/")
        if global.debug, let value = getenv(Self.testTrapVariable), let delay = UInt32(String(cString: value)) {
            usleep(min(delay, 60_000) * 1000)
            fatalError("\(Self.testTrapVariable) is set: the sandbox traps on purpose (a test hook)")
        }
        if global.debug, getenv(Self.testSentryForbiddenCallVariable) != nil {
            // Once `runsc run` has started the container and waits on it, as the trap hook does.
            usleep(300_000)
            let result = cshim_forbidden_host_call()
            let line = Array("runsc boot: the test hook's forbidden host call returned \(result)\n".utf8)
            _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
        booted.sandbox.waitForShutdown()
        booted.server.stop()
        Glibc.exit(0)
    }

    /// The Sentry's host seccomp filter, once the container is booted or
    /// restored (everything after this, checkpoints and restores in this
    /// process included, runs under it). `--debug` logs a violation instead
    /// of dying of it.
    private func installHostFilter(logger: Logger) throws {
        if global.debug, getenv(Self.testUnfilteredSentryVariable) != nil {
            logger.warning("confinement: no host seccomp filter for the Sentry (\(Self.testUnfilteredSentryVariable) is set)")
            return
        }
        let killsAnyway = getenv(Self.testSentryForbiddenCallVariable).map { String(cString: $0) == "kill" } ?? false
        let violation: HostFilter.Violation = global.debug && !killsAnyway ? .log : .kill
        try HostFilter.install(violation: violation)
        logger.info("confinement: host seccomp filter installed (\(HostFilter.ruleCount) rules; a violation \(violation == .kill ? "kills the sandbox" : "is logged and fails with ENOSYS"))")
    }

    /// Writes `message` on the ready pipe and closes it: the parent reads to end of file.
    private func report(_ message: String) {
        let bytes = Array(message.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(readyFd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { break }
            offset += written
        }
        close(readyFd)
    }

    /// Creates `path` if it is missing (the tally file, kept in the sandbox's root).
    private static func create(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunscError("cannot create \(path): \(SandboxLauncher.errnoText())") }
        close(fd)
    }
}

/// What replaces the sandbox's own stdio once the container's lives at
/// 256-258, opened before the sandbox leaves the host's root: 0 and 1 point
/// at /dev/null so nothing of ours lands in the container's output. Its
/// stderr carries only what a crash says (Swift's "Fatal error" and the
/// fatal-signal line) and `--debug`'s log: it goes to the `--log` file, else
/// stays the caller's, where the user sees it.
private struct CallerStdioReplacement {
    let null: Int32
    let log: Int32?

    init(log path: String?) throws {
        null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw RunscError("cannot open /dev/null: \(SandboxLauncher.errnoText())") }
        log = path.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }.flatMap { $0 >= 0 ? $0 : nil }
    }

    func detach() {
        for fd in [STDIN_FILENO, STDOUT_FILENO] { _ = dup2(null, fd) }
        close(null)
        if let log {
            _ = dup2(log, STDERR_FILENO)
            close(log)
        }
    }
}

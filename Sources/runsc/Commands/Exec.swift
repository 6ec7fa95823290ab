import ArgumentParser
import Boot
import FoundationEssentials
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc exec`: run a new process in a running container. Its stdio is this
/// command's own (the descriptors are passed to the sandbox); its
/// environment, working directory and user default to the container's spec,
/// as runc does, and `--process` gives a whole OCI process instead. In the
/// foreground the signals runsc receives go to the process and runsc exits
/// with its status (the code, or 128+N for signal N); `--detach` returns at once.
/// `--pid-file` names a host process whose exit is the new process's, as
/// gVisor's: this command in the foreground, a waiter (`init-waiter
/// --process`) when detached, which conmon waits for; `--internal-pid-file`
/// gets the PID in the container.
struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a new process in a running container.",
        discussion: """
            A command that does not exist in the container exits with 127, one that cannot be \
            executed with 126, as a shell would.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(name: [.customShort("d"), .long], help: "Return at once instead of waiting for the process.")
    var detach = false

    @Option(help: ArgumentHelp("The working directory in the container (default: the spec's).", valueName: "dir"))
    var cwd: String?

    @Option(name: [.customShort("e"), .long],
            help: ArgumentHelp("Set an environment variable (repeatable; over the spec's).", valueName: "K=V"))
    var env: [String] = []

    @Option(name: [.customShort("u"), .long], help: ArgumentHelp("The user to run as (default: the spec's).", valueName: "uid[:gid]"))
    var user: String?

    @Option(name: [.customShort("p"), .long],
            help: ArgumentHelp("An OCI process JSON file to run instead of CMD and the options above.", valueName: "process.json"))
    var process: String?

    @Option(help: ArgumentHelp("Write to this file the PID of a host process that exits with the new process, with its status.",
                               valueName: "file"))
    var pidFile: String?

    @Option(help: ArgumentHelp("Write the new process's PID in the container to this file.", valueName: "file"))
    var internalPidFile: String?

    @Flag(name: [.customShort("t"), .long], help: "Give the process a terminal (with --console-socket).")
    var tty = false

    @Option(help: ArgumentHelp("A Unix socket to send the terminal's master to (SCM_RIGHTS), as runc does.", valueName: "path"))
    var consoleSocket: String?

    @Argument(help: ArgumentHelp("The container to run in.", valueName: "container-id"))
    var id: String

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command and its arguments.", valueName: "command"))
    var command: [String] = []

    /// How a shell reports a command it cannot find or cannot execute.
    static let notFoundStatus: Int32 = 127
    static let notExecutableStatus: Int32 = 126

    func run() throws {
        _ = try global.configure()
        try CommandSupport.checkPIDFile(pidFile)
        try CommandSupport.checkPIDFile(internalPidFile)
        if !detach { SignalRelay.block() }
        let handle = try ContainerHandle.open(id, in: try global.store())
        let spec = try execProcess(bundle: handle.recorded.bundle)
        // A terminal is a new pty whose master goes to --console-socket, as runc's exec; the slave is the process's stdio.
        var terminal: Int32?
        if spec.terminal {
            guard let consoleSocket else {
                throw RunscError.notBuilt("exec", "a terminal without --console-socket (runsc relaying it to its own stdio)")
            }
            terminal = try ConsoleSocket.sendNewTerminal(to: consoleSocket)
        } else if let consoleSocket {
            throw RunscError("exec: --console-socket \(consoleSocket) is for a process with a terminal (--tty)")
        }
        defer { if let terminal { close(terminal) } }
        let stdio = terminal.map { [$0, $0, $0] } ?? [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO]
        let response = try handle.exchange(.exec(ExecRequest(process: spec)), files: stdio, command: "exec")
        let pid: Int32
        switch response {
        case .started(let started):
            pid = started
        case .failure(let failure):
            let message = "exec: container \"\(handle.id)\": \(failure.message)"
            switch failure.kind {
            case .executableNotFound:
                Entry.printError("runsc: " + message)
                throw ExitCode(ExecCommand.notFoundStatus)
            case .notExecutable:
                Entry.printError("runsc: " + message)
                throw ExitCode(ExecCommand.notExecutableStatus)
            default:
                throw RunscError(message)
            }
        default:
            throw RunscError("exec: container \"\(handle.id)\": unexpected answer \(response)")
        }
        if let internalPidFile { try CommandSupport.writePIDFile(internalPidFile, pid: pid) }
        if detach {
            // A detached exec leaves a host process behind whose life and exit status are the new process's.
            if let pidFile {
                let waiter = try SandboxLauncher.launchWaiter(global: global, store: handle.store, id: handle.id, process: pid)
                try CommandSupport.writePIDFile(pidFile, pid: waiter)
            }
            return
        }
        if let pidFile { try CommandSupport.writePIDFile(pidFile, pid: getpid()) }
        try SignalRelay.start { [handle] signal in
            _ = try? handle.call(.signalProcess(pid: pid, signal: signal), command: "kill")
        }
        let answer = try handle.call(.waitProcess(pid: pid), command: "exec")
        guard case .exited(let status) = answer else {
            throw RunscError("exec: container \"\(handle.id)\": unexpected answer \(answer)")
        }
        // ExitCode(0) would make the entry point print an empty line.
        if status.shellStatus != 0 { throw ExitCode(status.shellStatus) }
    }

    /// The process to run: `--process`'s file as it is, or the container's
    /// spec process with CMD and the options over it (runc's getProcess).
    func execProcess(bundle: String) throws -> Spec.Process {
        if let process {
            if !command.isEmpty || cwd != nil || !env.isEmpty || user != nil {
                throw RunscError("exec: --process gives the whole process; CMD, --cwd, --env and --user cannot go with it")
            }
            let loaded: Spec.Process
            do {
                loaded = try Bundle.loadProcess(process)
            } catch {
                throw RunscError("exec: --process: \(error)")
            }
            return loaded
        }
        guard !command.isEmpty else { throw RunscError("exec: no command given (exec ID CMD [ARG...])") }
        var spec = try Bundle.load(directory: bundle).spec.process ?? Spec.Process()
        spec.terminal = tty
        spec.args = command
        for assignment in env {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                throw RunscError("exec: --env \(assignment): expected NAME=VALUE")
            }
            let prefix = assignment[...equals]
            spec.env.removeAll { $0.hasPrefix(prefix) }
            spec.env.append(assignment)
        }
        if let cwd {
            guard cwd.hasPrefix("/") else { throw RunscError("exec: --cwd \(cwd) is not absolute") }
            spec.cwd = cwd
        }
        if let user { spec.user = try ExecCommand.parseUser(user, over: spec.user) }
        return spec
    }

    /// `UID[:GID]` over `user`, numbers as runc takes them; without a GID the spec's stays, as runc's does.
    static func parseUser(_ text: String, over user: Spec.User) throws -> Spec.User {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let uid = UInt32(parts[0]) else { throw RunscError("exec: --user \(text): expected UID or UID:GID (numbers)") }
        var result = user
        result.uid = uid
        if parts.count == 2 {
            guard let gid = UInt32(parts[1]) else { throw RunscError("exec: --user \(text): expected UID or UID:GID (numbers)") }
            result.gid = gid
        }
        return result
    }
}

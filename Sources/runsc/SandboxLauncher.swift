import Boot
import CShim
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Starts the sandbox process (`runsc boot`, our own binary) with posix_spawn
/// (never fork in Swift), hands it this process's stdio as the container's,
/// and waits on a pipe until it says it is ready or why it failed.
enum SandboxLauncher {
    /// The FD number the sandbox finds its end of the ready pipe at.
    static let readyFD: Int32 = 3
    /// What the sandbox writes on the ready pipe when the container is created.
    static let readyMessage = "ready"

    /// Spawns the sandbox for container `id` and returns its PID once it
    /// serves the control socket. If it fails, its message is the error and
    /// nothing of the container remains in `store`.
    static func launch(global: GlobalOptions, store: ContainerStore, bundle: Bundle, id: ContainerID,
                       imagePath: String? = nil, saveRestoreEvery: UInt64? = nil, terminal: Int32? = nil) throws -> Int32 {
        let executable = try ownExecutable()
        var pipeFDs: [Int32] = [-1, -1]
        // pipe2 is not exported to Swift; nothing else is spawned meanwhile, so plain pipe and the
        // close-on-exec copies below are as good.
        guard pipe(&pipeFDs) == 0 else { throw RunscError("cannot create the ready pipe: \(errnoText())") }
        // Above the FD the child sees it at, so the dup2 below always copies (and clears close-on-exec).
        let readEnd = fcntl(pipeFDs[0], F_DUPFD_CLOEXEC, 10)
        let writeEnd = fcntl(pipeFDs[1], F_DUPFD_CLOEXEC, 10)
        close(pipeFDs[0])
        close(pipeFDs[1])
        guard readEnd >= 0, writeEnd >= 0 else { throw RunscError("cannot set up the ready pipe: \(errnoText())") }
        defer { close(readEnd) }

        var arguments = [executable, "--root", store.root, "--platform", global.platform]
        if let log = global.log { arguments += ["--log", log, "--log-format", global.logFormat.rawValue] }
        if global.debug { arguments.append("--debug") }
        arguments += ["boot", "--bundle", bundle.directory, "--ready-fd", String(readyFD)]
        if let imagePath { arguments += ["--image-path", imagePath] }
        if let saveRestoreEvery { arguments += ["--debug-save-restore-every", String(saveRestoreEvery)] }
        arguments.append(id.rawValue)

        let pid: pid_t
        do {
            pid = try spawn(executable, arguments, keeping: (writeEnd, readyFD), stdio: terminal,
                            newPIDNamespace: true)
        } catch {
            close(writeEnd)
            throw error
        }
        close(writeEnd)
        let message = readAll(readEnd)
        if message == readyMessage { return pid }

        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // The sandbox cleans up after itself; this covers one that crashed before it could.
        if let record = SandboxProcess.read(from: store.directory(for: id)), record.pid == pid {
            try? store.remove(id)
        }
        if !message.isEmpty { throw RunscError("cannot create container \"\(id)\": \(message)") }
        throw RunscError("cannot create container \"\(id)\": the sandbox process \(pid) \(describe(status)) before it was ready")
    }

    /// Spawns the process the PID file names (`runsc init-waiter`): it waits
    /// for the container's init and exits with its status, so a caller that
    /// waits for the PID file's process (conmon) sees the container's end;
    /// the sandbox itself lives on until `delete`, answering `state`. It is
    /// recorded in the state directory as `waiterFileName`, so `checkpoint`
    /// can wait for it. Its stdio is /dev/null: it must not hold the
    /// container's output pipes open.
    ///
    /// With `process` (a PID in the container that `runsc exec` started) the
    /// waiter is that process's instead (`exec --pid-file`): it exits with the
    /// exec'd process's status, and nothing is recorded.
    static func launchWaiter(global: GlobalOptions, store: ContainerStore, id: ContainerID,
                             process: Int32? = nil) throws -> Int32 {
        let executable = try ownExecutable()
        var arguments = [executable, "--root", store.root]
        if let log = global.log { arguments += ["--log", log, "--log-format", global.logFormat.rawValue] }
        if global.debug { arguments.append("--debug") }
        arguments.append(InitWaiterCommand.configuration.commandName ?? "init-waiter")
        if let process { arguments += ["--process", String(process)] }
        arguments.append(id.rawValue)
        let pid = try spawn(executable, arguments, keeping: nil)
        if process == nil, let startTime = SandboxProcess.startTime(of: pid) {
            try? SandboxProcess(pid: pid, startTime: startTime).write(to: store.directory(for: id), name: waiterFileName)
        }
        return pid
    }

    /// The waiter's record in the container's state directory.
    static let waiterFileName = "init-waiter.json"

    /// `keeping` is an FD of ours and the number the child finds it at; without it the child's stdio is /dev/null.
    /// `stdio` (a terminal's slave) replaces our stdio as the child's 0, 1 and 2.
    /// With `newPIDNamespace` the child is the init of a new PID namespace
    /// (the sandbox: its stubs are in it, see Confinement) when this process
    /// may make one, else it starts in ours and the sandbox logs that it has none.
    private static func spawn(_ executable: String, _ arguments: [String], keeping: (Int32, Int32)?,
                              stdio: Int32? = nil, newPIDNamespace: Bool = false) throws -> pid_t {
        // The sandbox outlives us: it must not hold what our caller gave us
        // beyond stdio (Foundation's Process, for one, waits for a socket it
        // passes to close before it reports our exit).
        let closed = inheritableFDs().filter { $0 > STDERR_FILENO && $0 != keeping?.1 }
        // The sandbox starts with no signal blocked and default dispositions,
        // whatever this process blocked to forward signals.
        let defaults = SignalRelay.forwarded + [SIGPIPE]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        if newPIDNamespace {
            var childFailed: Int32 = 0
            let pid = cshim_spawn_in_new_pid_namespace(executable, argv, environ, stdio ?? -1, keeping?.0 ?? -1,
                                                       keeping?.1 ?? -1, closed, Int32(clamping: closed.count),
                                                       defaults, Int32(clamping: defaults.count), &childFailed)
            if pid > 0 { return pid }
            let reason = String(cString: strerror(-pid))
            if childFailed != 0 { throw RunscError("cannot start the sandbox process \(executable): \(reason)") }
            // The sandbox says in its log why it has no PID namespace.
            free(argv.removeLast())
            argv += [strdup("--pid-namespace-error"), strdup("clone with CLONE_NEWPID: \(reason)"), nil]
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdio {
            for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] { posix_spawn_file_actions_adddup2(&actions, stdio, fd) }
        }
        if let (fd, target) = keeping {
            posix_spawn_file_actions_adddup2(&actions, fd, target)
        } else {
            for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] {
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0)
            }
        }
        for fd in closed { posix_spawn_file_actions_addclose(&actions, fd) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaultSet = sigset_t()
        sigemptyset(&defaultSet)
        for signal in defaults { sigaddset(&defaultSet, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSet)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw RunscError("cannot start the sandbox process \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Our open FDs without close-on-exec, which a spawned process would inherit.
    private static func inheritableFDs() -> [Int32] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        var fds: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(name) { fds.append(fd) }
        }
        closedir(directory)
        return fds.filter { fd in
            let flags = fcntl(fd, F_GETFD)
            return flags >= 0 && flags & FD_CLOEXEC == 0
        }
    }

    /// This binary, so the sandbox runs exactly the code of the command that started it.
    private static func ownExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw RunscError("cannot find the runsc executable (/proc/self/exe): \(errnoText())") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func readAll(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self).trimmingTrailingNewlines()
    }

    /// A sandbox's wait status in words: "exited with status N" or "was killed by SIGX".
    /// 128+N names the fatal signal N it sent itself (fatal.c: a PID
    /// namespace's init cannot die of it).
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        guard signal == 0 else { return "was killed by \(Signals.name(of: signal))" }
        let code = (status >> 8) & 0xff
        guard let fatal = selfSentSignal(status) else { return "exited with status \(code)" }
        return "exited with status \(code) (\(Signals.name(of: fatal)), which it cannot die of as its PID namespace's init)"
    }

    /// The fatal signal a sandbox that exited with `status` sent itself, if any.
    static func selfSentSignal(_ status: Int32) -> Int32? {
        guard status & 0x7f == 0 else { return nil }
        let code = (status >> 8) & 0xff
        return [SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE].first { code == 128 + $0 }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = self
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}

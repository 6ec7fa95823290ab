import Dispatch
import Glibc
import OCI
import Sentry
import Synchronization

/// `runsc exec` inside the sandbox, as gVisor's loader.executeAsync: a new
/// process in the running container, created by the Sentry's one process
/// creation (`Kernel.createProcess`) from an OCI process, its stdio the
/// descriptors runsc exec passed. Its parent is outside the container, so
/// its exit status comes to the host side (`ExecProcesses`), not to a
/// zombie in the kernel: nothing of it is saved in an image.
extension Loader {
    /// Why an exec failed; `kind` lets runsc exec exit as a shell would (127, 126).
    public struct ExecFailure: Error, Sendable, CustomStringConvertible {
        public enum Kind: Sendable { case notFound, notExecutable, other }
        public var kind: Kind
        public var message: String
        public var description: String { message }
    }

    /// Starts `process` with `stdio` (three host FDs this call takes over,
    /// closed on failure) and returns its PID in the container. Under
    /// `checkpointLock`: a process created while a checkpoint or a
    /// save/restore cycle has the kernel paused would be missing from its
    /// image, and in the test mode left in the kernel thrown away.
    public func execute(_ process: Spec.Process, stdio: [Int32]) throws(ExecFailure) -> Int32 {
        try checkpointLock.withLock { _ throws(ExecFailure) -> Int32 in try executeLocked(process, stdio: stdio) }
    }

    private func executeLocked(_ process: Spec.Process, stdio: [Int32]) throws(ExecFailure) -> Int32 {
        var unclaimed = stdio
        defer { for fd in unclaimed { close(fd) } }
        guard stdio.count == 3 else {
            throw ExecFailure(kind: .other, message: "exec needs 3 stdio descriptors, got \(stdio.count)")
        }
        guard let name = process.args.first, !name.isEmpty else {
            throw ExecFailure(kind: .other, message: "exec: no command given")
        }
        // Init's end kills every process it finds; one created after that would run on alone.
        guard kernel.initThreadGroup?.isExiting == false else {
            throw ExecFailure(kind: .other, message: "exec: the container's init has exited")
        }
        let credentials = Loader.credentials(for: process)
        let limits: Limits
        let files: ContainerFiles
        do {
            limits = try Loader.limits(for: process)
            files = try Loader.containerFiles(kernel, credentials: credentials)
        } catch {
            throw ExecFailure(kind: .other, message: error.description)
        }
        let table = FDTable()
        // `terminal: true`: runsc exec passed a pty slave three times, the new process's controlling terminal.
        let terminal = process.terminal && isatty(stdio[0]) == 1 ? HostTerminal() : nil
        for (number, fd) in stdio.enumerated() {
            let access = UInt32(truncatingIfNeeded: fcntl(fd, F_GETFL) & O_ACCMODE)
            do {
                try table.install(HostStdioFile.passed(hostFD: fd, flags: access, terminal: terminal), at: Int32(number),
                                  closeOnExec: false)
            } catch {
                table.removeAll()
                throw ExecFailure(kind: .other, message: "cannot install stdio FD \(number): \(error)")
            }
            unclaimed.removeAll { $0 == fd }
        }
        let task: Task
        do {
            task = try kernel.createProcess(CreateProcessArgs(
                filename: name, argv: process.args, envp: Loader.environment(for: process, files: files),
                workingDirectory: process.cwd.isEmpty ? "/" : process.cwd, credentials: credentials,
                limits: limits, umask: process.user.umask ?? 0o022, fdTable: table,
                personality: Loader.personality(args.spec)))
        } catch {
            table.removeAll()
            throw ExecFailure(execError: error, name: name)
        }
        task.controls.noNewPrivileges = process.noNewPrivileges
        task.seccomp = seccomp
        if let terminal, let group = task.threadGroup { terminal.becomeControllingTerminal(of: group) }
        let pid = task.processID
        execProcesses.add(pid)
        recordStart(of: pid)
        do {
            try task.start()
        } catch {
            execProcesses.forget(pid)
            task.threadGroup?.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
            throw ExecFailure(kind: .other, message: "cannot start process \(pid): \(error)")
        }
        logger.debug("exec: process \(pid) runs \(process.args)")
        return pid
    }

    /// Blocks until process `pid` (started by `execute`) has exited and
    /// returns how; nil if no such process was started (or it was already waited for).
    public func waitForProcess(_ pid: Int32) -> Result<ExitStatus, ExecProcesses.Lost>? {
        execProcesses.wait(pid)
    }

    /// Sends `number` to process `pid`.
    public func signalProcess(_ pid: Int32, _ number: Int32) throws(LoaderError) {
        let signal = Signal(rawValue: number)
        guard signal.isValid else { throw LoaderError("signal \(number) is out of range 1...\(Signal.count)") }
        // Not into a kernel a save/restore cycle is replacing.
        let group = checkpointLock.withLock { _ in
            let group = kernel.pidNamespace.threadGroup(pid)
            group?.kill(with: signal)
            return group
        }
        guard group != nil else { throw LoaderError("no process \(pid) in the container") }
    }

    /// Records exit statuses for `execProcesses` (for every kernel: a fresh boot and a restore).
    func watchProcessExits() {
        kernel.onProcessExit { [execProcesses] pid, reason in
            switch reason {
            case .exited(let code): execProcesses.finished(pid, .exited(code))
            case .killed(let signal, _): execProcesses.finished(pid, .killed(signal))
            }
        }
    }
}

extension Loader.ExecFailure {
    /// runc's words for a command it cannot run, which users and scripts know.
    init(execError error: ExecError, name: String) {
        switch error.errno {
        case .enoent where !name.contains("/"):
            self.init(kind: .notFound, message: "exec: \"\(name)\": executable file not found in $PATH")
        case .enoent, .enotdir:
            self.init(kind: .notFound, message: "exec: \"\(name)\": no such file or directory (\(error.message))")
        case .eacces, .enoexec:
            self.init(kind: .notExecutable, message: "exec: \"\(name)\": permission denied (\(error.message))")
        default:
            self.init(kind: .other, message: "exec: \"\(name)\": \(error)")
        }
    }
}

/// The processes `runsc exec` started and their exit statuses, kept on the
/// host side (gVisor keeps them in its loader) so `runsc wait --pid` works
/// after the process is gone. An entry lives until it is waited for.
public final class ExecProcesses: Sendable {
    /// Why a process has no exit status to report.
    public enum Lost: Error, Sendable, Equatable {
        /// The container was checkpointed into `image` and stopped while the process ran.
        case checkpointed(image: String)
    }

    private struct Entry {
        var outcome: Result<ExitStatus, Lost>?
        var waiters: [DispatchSemaphore] = []
    }

    /// A leaf.
    private let entries = Mutex<[Int32: Entry]>([:])

    func add(_ pid: Int32) {
        entries.withLock { $0[pid] = Entry() }
    }

    func forget(_ pid: Int32) {
        entries.withLock { _ = $0.removeValue(forKey: pid) }
    }

    /// Called as process `pid` finishes; a process exec did not start is not recorded.
    func finished(_ pid: Int32, _ status: ExitStatus) {
        settle(pid, .success(status))
    }

    /// Before a checkpoint stops the container: every exec'd process still
    /// running reports that, not the SIGKILL that ends it.
    func checkpointing(into image: String) {
        let running = entries.withLock { $0.filter { $0.value.outcome == nil }.map(\.key) }
        for pid in running { settle(pid, .failure(.checkpointed(image: image))) }
    }

    private func settle(_ pid: Int32, _ outcome: Result<ExitStatus, Lost>) {
        let waiters = entries.withLock { entries -> [DispatchSemaphore] in
            guard var entry = entries[pid], entry.outcome == nil else { return [] }
            let waiters = entry.waiters
            entry.outcome = outcome
            entry.waiters = []
            entries[pid] = entry
            return waiters
        }
        for waiter in waiters { waiter.signal() }
    }

    /// Blocks until `pid` has an outcome and forgets it; nil for a PID exec did not start.
    func wait(_ pid: Int32) -> Result<ExitStatus, Lost>? {
        let gate = DispatchSemaphore(value: 0)
        let known = entries.withLock { entries -> Bool in
            guard entries[pid] != nil else { return false }
            entries[pid]?.waiters.append(gate)
            return true
        }
        guard known else { return nil }
        while true {
            let outcome = entries.withLock { entries -> Result<ExitStatus, Lost>?? in
                guard let entry = entries[pid] else { return .some(nil) }
                guard let outcome = entry.outcome else { return nil }
                entries[pid] = nil
                return .some(outcome)
            }
            if let outcome { return outcome }
            gate.wait()
        }
    }
}

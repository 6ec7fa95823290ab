import CShim
import Boot
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A container in the state directory and the sandbox process serving it.
/// Nothing in the directory is trusted on its own: the recorded sandbox
/// (PID and start time) must still be that process, or the state is stale
/// and is cleaned up.
struct ContainerHandle {
    let id: ContainerID
    let store: ContainerStore
    /// As the state file last recorded it.
    let recorded: ContainerState
    /// The sandbox as it recorded itself; nil if it died before writing the record.
    let sandbox: SandboxProcess?

    var directory: String { store.directory(for: id) }
    var sandboxPID: Int32 { sandbox?.pid ?? recorded.pid ?? 0 }

    /// Seconds a command waits for the sandbox to answer.
    static let answerTimeout = 10
    /// Seconds `delete` waits for a sandbox to end after `shutdown`, before killing it.
    static let exitTimeout = 5

    /// The container named `rawID`, which must exist.
    static func open(_ rawID: String, in store: ContainerStore) throws -> ContainerHandle {
        let (id, state) = try CommandSupport.existingContainer(rawID, in: store)
        return ContainerHandle(id: id, store: store, recorded: state,
                               sandbox: SandboxProcess.read(from: store.directory(for: id)))
    }

    /// Whether the recorded sandbox process still runs. Without a record (a
    /// sandbox killed between creating its directory and recording itself),
    /// only the PID can be checked.
    var isSandboxAlive: Bool {
        if let sandbox { return sandbox.isAlive }
        guard let pid = recorded.pid else { return false }
        return SandboxProcess.startTime(of: pid) != nil
    }

    /// Removes the state of a dead sandbox and returns the error to report:
    /// how it died when it was our child (a foreground `run` or `restore`).
    func cleanUpStale() -> RunscError {
        Cgroup.removeRecorded(in: directory)
        try? store.remove(id)
        if let death = reapDeadChild() {
            return RunscError("container \"\(id)\": the sandbox process \(sandboxPID) \(death)")
        }
        return RunscError("container \"\(id)\": sandbox process \(sandboxPID) is not running (stale state, cleaned up)")
    }

    /// How the sandbox died, if it was our child and is dead (reaping it).
    private func reapDeadChild() -> String? {
        let pid = sandboxPID
        guard pid > 0 else { return nil }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let fault = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT].contains(status & 0x7f)
            || SandboxLauncher.selfSentSignal(status) != nil
        return SandboxLauncher.describe(status)
            + (fault ? " (a fault in the sandbox; what failed is in the log, or on stderr without --log)" : "")
    }

    /// Sends `request`; a sandbox that is gone makes this a stale-state error
    /// (after cleaning up), a refusal becomes the sandbox's message.
    func call(_ request: ControlRequest, files: [Int32] = [], command: String,
              timeout: Int = answerTimeout) throws -> ControlResponse {
        let response = try exchange(request, files: files, command: command, timeout: timeout)
        if case .failure(let failure) = response {
            throw RunscError("\(command): container \"\(id)\": \(failure.message)")
        }
        return response
    }

    /// Sends `request` with `files` and returns the answer, a refusal included;
    /// a sandbox that is gone makes this a stale-state error (after cleaning up).
    func exchange(_ request: ControlRequest, files: [Int32] = [], command: String,
                  timeout: Int = answerTimeout) throws -> ControlResponse {
        guard isSandboxAlive else { throw cleanUpStale() }
        let response: ControlResponse
        do {
            response = try ControlClient(directory: directory, timeout: timeout).call(request, files: files)
        } catch {
            // A sandbox that died mid-call closed the socket a moment before it is gone.
            if error == .closed, sandboxPID > 0 {
                _ = cshim_wait_for_exit(sandboxPID, 1000)
            }
            if !isSandboxAlive { throw cleanUpStale() }
            throw RunscError("\(command): container \"\(id)\": sandbox process \(sandboxPID): \(error)")
        }
        return response
    }

    /// The container's state: the sandbox's answer; the recorded state while
    /// the sandbox has not opened its socket yet; "stopped" once the sandbox is gone.
    func currentState() throws -> SandboxState {
        guard isSandboxAlive else {
            var state = recorded
            state.status = .stopped
            return SandboxState(container: state)
        }
        do {
            let response = try ControlClient(directory: directory, timeout: Self.answerTimeout).call(.state)
            switch response {
            case .state(let state): return state
            case .failure(let failure): throw RunscError("state: container \"\(id)\": \(failure.message)")
            default: throw RunscError("state: container \"\(id)\": unexpected answer \(response)")
            }
        } catch let error as ControlError {
            if case .notListening = error, isSandboxAlive { return SandboxState(container: recorded) }
            if !isSandboxAlive {
                var state = recorded
                state.status = .stopped
                return SandboxState(container: state)
            }
            throw RunscError("state: container \"\(id)\": sandbox process \(sandboxPID): \(error)")
        }
    }

    /// Ends the sandbox (`shutdown`, then SIGKILL if it lingers) and removes the state directory.
    func destroy() throws {
        if isSandboxAlive {
            do {
                _ = try ControlClient(directory: directory, timeout: Self.answerTimeout).call(.shutdown)
            } catch {
                // A sandbox that cannot answer is killed below.
            }
            if !waitForSandboxExit(seconds: Self.exitTimeout), let pid = sandbox?.pid, isSandboxAlive {
                kill(pid, SIGKILL)
                _ = waitForSandboxExit(seconds: Self.exitTimeout)
            }
        }
        Cgroup.removeRecorded(in: directory)
        do {
            try store.remove(id)
        } catch ContainerStoreError.notFound {
            // Already gone: another delete won the race.
        }
    }

    /// Waits until the sandbox process is gone. It is usually not our child, so
    /// it cannot be waited for: a pidfd says when it exits (a foreground run
    /// used to lose up to 10 ms here to polling); polling is the fallback.
    private func waitForSandboxExit(seconds: Int) -> Bool {
        if let pid = sandbox?.pid ?? recorded.pid, cshim_wait_for_exit(pid, Int32(seconds * 1000)) >= 0 {
            reapIfChild()
            return !isSandboxAlive
        }
        for _ in 0..<(seconds * 100) {
            if !isSandboxAlive {
                reapIfChild()
                return true
            }
            usleep(10_000)
        }
        return !isSandboxAlive
    }

    /// A sandbox this process spawned (foreground `run`) becomes a zombie until reaped.
    private func reapIfChild() {
        guard let pid = sandbox?.pid else { return }
        var status: Int32 = 0
        _ = waitpid(pid, &status, WNOHANG)
    }

    /// Before an ID is reused: a directory left by a dead sandbox is removed, so the new container can take its place.
    static func reclaimIfStale(_ rawID: String, in store: ContainerStore) {
        guard let id = try? ContainerID(rawID), store.exists(id),
              let handle = try? open(rawID, in: store), !handle.isSandboxAlive else { return }
        Cgroup.removeRecorded(in: handle.directory)
        try? store.remove(id)
    }
}

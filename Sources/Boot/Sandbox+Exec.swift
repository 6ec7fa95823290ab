import Glibc
import OCI

/// The sandbox's answers to `runsc exec`, `wait --pid`, `pause` and `resume`.
/// A new process needs a running container (runc refuses a created, paused
/// or stopped one); pause and resume move the status between running and
/// paused, and the state file follows.
extension Sandbox {
    func execute(_ request: ExecRequest, stdio: [Int32]) -> ControlResponse {
        let current = status.withLock { $0.container.status }
        guard current == .running else {
            for fd in stdio { close(fd) }
            return .failure(ControlFailure(.invalidState, "cannot exec in a container that is \(current.rawValue)"))
        }
        do {
            return .started(pid: try loader.execute(request.process, stdio: stdio))
        } catch {
            let kind: ControlFailure.Kind = switch error.kind {
            case .notFound: .executableNotFound
            case .notExecutable: .notExecutable
            case .other: .failed
            }
            return .failure(ControlFailure(kind, error.message))
        }
    }

    func waitForProcess(_ pid: Int32) -> ControlResponse {
        if pid == loader.initTask.processID { return waitForExit() }
        switch loader.waitForProcess(pid) {
        case .success(let exit)?:
            return .exited(exit)
        case .failure(.checkpointed(let image))?:
            return .failure(ControlFailure(.failed, "the container was checkpointed to \(image) and stopped "
                                               + "while process \(pid) ran; it has no exit status"))
        case nil:
            return .failure(ControlFailure(.invalidState, "no process \(pid) started by exec is left to wait for "
                                               + "(each exit status is given once)"))
        }
    }

    func deliver(_ signal: Int32, toProcess pid: Int32) -> ControlResponse {
        do {
            try loader.signalProcess(pid, signal)
        } catch {
            return .failure(ControlFailure(.failed, error.description))
        }
        return .ok
    }

    func pause() -> ControlResponse {
        let current = status.withLock { $0.container.status }
        guard current == .running else {
            return .failure(ControlFailure(.invalidState, "cannot pause a container that is \(current.rawValue)"))
        }
        do {
            try loader.pauseContainer()
        } catch {
            return .failure(ControlFailure(.failed, error.description))
        }
        status.withLock { state in
            if state.container.status == .running { state.container.status = .paused }
        }
        persist()
        return .ok
    }

    func resume() -> ControlResponse {
        let current = status.withLock { $0.container.status }
        guard current == .paused else {
            return .failure(ControlFailure(.invalidState, "cannot resume a container that is \(current.rawValue)"))
        }
        loader.resumeContainer()
        resumed()
        return .ok
    }

    /// The kernel runs again (resume, or a SIGKILL to the paused container).
    func resumed() {
        status.withLock { state in
            if state.container.status == .paused { state.container.status = .running }
        }
        persist()
    }
}

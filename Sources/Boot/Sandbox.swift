import Dispatch
import Glibc
import Logging
import OCI
import Synchronization

/// One container's sandbox process, as `runsc boot` runs it: the Loader's
/// kernel, the container's status (created → running → stopped), and the
/// answers to control requests. The status is kept in the state directory
/// too, so `runsc list` can show it without asking; the control socket is the
/// authority while the sandbox lives.
public final class Sandbox: Sendable {
    public let loader: Loader
    public let store: ContainerStore
    let logger: Logger
    private let shutdownRequested = DispatchSemaphore(value: 0)

    struct Status {
        var container: ContainerState
        var exit: ExitStatus?
        /// Woken when init exits.
        var waiters: [DispatchSemaphore] = []
    }

    let status: Mutex<Status>
    /// Serializes state-file writes, so the last write holds the latest status.
    /// Taken before `status` when both are held; neither is held into the Sentry.
    private let persisting = Mutex<Void>(())

    /// How long `shutdown` waits for a killed container to finish before ending the sandbox anyway.
    static let shutdownGrace: DispatchTimeInterval = .seconds(5)

    /// `state` is what was written to the state directory when the sandbox became "created".
    public init(loader: Loader, store: ContainerStore, state: ContainerState, logger: Logger) {
        self.loader = loader
        self.store = store
        self.logger = logger
        status = Mutex(Status(container: state))
        loader.onExit { [self] exit in exited(exit) }
    }

    /// Blocks the calling thread until a `shutdown` request has been answered.
    public func waitForShutdown() {
        shutdownRequested.wait()
    }

    /// The control server's handler. `files` came with the request: `exec`
    /// takes them as the new process's stdio, `checkpoint` its image's parent
    /// directory; every other request closes them.
    public func handle(_ request: ControlRequest, files: [Int32]) -> ControlServer.Reply {
        var unclaimed = files
        defer { for file in unclaimed { close(file) } }
        switch request {
        case .exec(let exec):
            unclaimed = []
            return ControlServer.Reply(execute(exec, stdio: files))
        case .checkpoint(let checkpoint):
            return ControlServer.Reply(self.checkpoint(checkpoint, parentDirectory: files.first))
        case .state:
            let snapshot = status.withLock { SandboxState(container: $0.container, exit: $0.exit) }
            return ControlServer.Reply(.state(snapshot))
        case .start:
            return ControlServer.Reply(start())
        case .signal(let signal, let all):
            return ControlServer.Reply(deliver(signal, all: all))
        case .wait:
            return ControlServer.Reply(waitForExit())
        case .shutdown:
            stopContainer()
            return ControlServer.Reply(.ok) { [shutdownRequested] in shutdownRequested.signal() }
        case .restore:
            return ControlServer.Reply(.failure(ControlFailure(
                .notSupported, "restore into a running sandbox is not supported by this sandbox yet")))
        case .waitProcess(let pid):
            return ControlServer.Reply(waitForProcess(pid))
        case .signalProcess(let pid, let signal):
            return ControlServer.Reply(deliver(signal, toProcess: pid))
        case .processes:
            return ControlServer.Reply(.processes(loader.processes()))
        case .statistics:
            return ControlServer.Reply(.statistics(loader.statistics()))
        case .pause:
            return ControlServer.Reply(pause())
        case .resume:
            return ControlServer.Reply(resume())
        }
    }

    private func start() -> ControlResponse {
        let current = status.withLock { state -> ContainerState.Status in
            let before = state.container.status
            if before == .created { state.container.status = .running }
            return before
        }
        guard current == .created else {
            return .failure(ControlFailure(.invalidState, "cannot start a container that is \(current.rawValue)"))
        }
        do {
            try loader.start()
        } catch {
            logger.error("start failed: \(error)")
            return .failure(ControlFailure(.failed, error.description))
        }
        persist()
        logger.debug("container started")
        return .ok
    }

    private func deliver(_ signal: Int32, all: Bool) -> ControlResponse {
        let current = status.withLock { $0.container.status }
        guard current == .created || current == .running || current == .paused else {
            return .failure(ControlFailure(.invalidState, "cannot signal a container that is \(current.rawValue)"))
        }
        do {
            if try loader.signalContainer(signal, all: all) { resumed() }
        } catch {
            return .failure(ControlFailure(.failed, error.description))
        }
        if current == .created { finishIfKilledBeforeStart() }
        return .ok
    }

    /// A created container has no running task to notice a fatal signal: start
    /// the task so the Sentry's exit path runs (it exits before any
    /// application instruction, as the group is already exiting).
    private func finishIfKilledBeforeStart() {
        guard loader.initTask.threadGroup?.isExiting == true else { return }
        let wasCreated = status.withLock { state -> Bool in
            guard state.container.status == .created else { return false }
            state.container.status = .running
            return true
        }
        guard wasCreated else { return }
        do {
            try loader.start()
        } catch {
            logger.error("cannot run the exit of a container killed before start: \(error)")
        }
    }

    func waitForExit() -> ControlResponse {
        let gate = DispatchSemaphore(value: 0)
        let done = status.withLock { state -> ExitStatus? in
            if let exit = state.exit { return exit }
            state.waiters.append(gate)
            return nil
        }
        if let done { return .exited(done) }
        gate.wait()
        let exit = status.withLock { $0.exit }
        guard let exit else { return .failure(ControlFailure(.failed, "woken without an exit status")) }
        return .exited(exit)
    }

    /// Kills whatever still runs and waits (bounded) for init to finish.
    private func stopContainer() {
        let current = status.withLock { $0.container.status }
        guard current == .created || current == .running || current == .paused else { return }
        do {
            if try loader.signalContainer(9, all: true) { resumed() }
        } catch {
            logger.warning("cannot kill the container: \(error)")
        }
        if current == .created { finishIfKilledBeforeStart() }
        let gate = DispatchSemaphore(value: 0)
        let pending = status.withLock { state -> Bool in
            if state.exit != nil { return false }
            state.waiters.append(gate)
            return true
        }
        if pending && gate.wait(timeout: .now() + Sandbox.shutdownGrace) == .timedOut {
            logger.warning("the container did not finish within the shutdown grace period")
        }
    }

    private func exited(_ exit: ExitStatus) {
        logger.debug("container \(exit)")
        loader.logSyscallCounts()
        let waiters = status.withLock { state -> [DispatchSemaphore] in
            state.exit = exit
            state.container.status = .stopped
            defer { state.waiters = [] }
            return state.waiters
        }
        persist()
        for waiter in waiters { waiter.signal() }
    }

    /// Writes the current status to the state directory; a failure is logged, the socket stays the authority.
    func persist() {
        persisting.withLock { _ in
            let state = status.withLock { $0.container }
            do {
                try store.save(state)
            } catch {
                logger.warning("cannot record the container's status: \(error)")
            }
        }
    }
}

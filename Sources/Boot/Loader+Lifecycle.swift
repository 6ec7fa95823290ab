import Glibc
import Sentry

/// What the sandbox process needs beyond `run()`: the container is built by
/// `init` and started later (`runsc create` then `runsc start`), signalled
/// from `runsc kill`, and waited for from `runsc wait`.
extension Loader {
    /// Starts the init task (a restored kernel: every task it had) and returns at once.
    public func start() throws(LoaderError) {
        if restoredTasks.isEmpty { recordStart(of: initTask.processID) }
        for task in restoredTasks.isEmpty ? [initTask] : restoredTasks {
            do {
                try task.start()
            } catch {
                throw LoaderError("cannot start task \(task.id): \(error)")
            }
        }
        if !restoredTasks.isEmpty { kernel.startTimers() }
        startSaveRestoreCycles()
    }

    /// Sends `signal` to init's thread group, or with `all` to every thread
    /// group in the container. A paused container keeps other signals pending
    /// until it is resumed; SIGKILL resumes it, so it dies (as runc thaws a
    /// frozen container for SIGKILL). Returns whether it was resumed.
    @discardableResult
    public func signalContainer(_ number: Int32, all: Bool) throws(LoaderError) -> Bool {
        let signal = Signal(rawValue: number)
        guard signal.isValid else { throw LoaderError("signal \(number) is out of range 1...\(Signal.count)") }
        // Not into a kernel a save/restore cycle is replacing.
        checkpointLock.withLock { _ in signalKernel(signal, all: all) }
        return signal == .kill && resumeContainer()
    }

    private func signalKernel(_ signal: Signal, all: Bool) {
        let kernel = self.kernel
        if all {
            for group in kernel.pidNamespace.allThreadGroups { group.kill(with: signal) }
        } else {
            kernel.signalInit(signal)
        }
    }

    /// `runsc pause`: every task parks (as for a checkpoint) until `resumeContainer`.
    public func pauseContainer() throws(LoaderError) {
        try checkpointLock.withLock { paused throws(LoaderError) in
            guard !paused else { return }
            do {
                try kernel.pause()
            } catch {
                throw LoaderError("\(error)")
            }
            paused = true
        }
    }

    /// `runsc resume`; returns whether the container was paused.
    @discardableResult
    public func resumeContainer() -> Bool {
        checkpointLock.withLock { paused in
            guard paused else { return false }
            paused = false
            kernel.resume()
            return true
        }
    }

    /// Notes that process `pid` starts now, for `runsc ps`.
    func recordStart(of pid: Int32) {
        let now = Clocks.hostNanoseconds(CLOCK_REALTIME)
        startTimes.withLock { $0[pid] = now }
    }

    /// Runs `body` once init has exited (at once if it has), with how it ended.
    public func onExit(_ body: @escaping @Sendable (ExitStatus) -> Void) {
        kernel.onInitExit { [saveRestoreCycles] reason in
            saveRestoreCycles?.finish()
            switch reason {
            case .exited(let code): body(.exited(code))
            case .killed(let signal, _): body(.killed(signal))
            }
        }
    }
}

import Sentry

/// What the sandbox process needs beyond `run()`: the container is built by
/// `init` and started later (`runsc create` then `runsc start`), signalled
/// from `runsc kill`, and waited for from `runsc wait`.
extension Loader {
    /// Starts the init task (a restored kernel: every task it had) and returns at once.
    public func start() throws(LoaderError) {
        for task in restoredTasks.isEmpty ? [initTask] : restoredTasks {
            do {
                try task.start()
            } catch {
                throw LoaderError("cannot start task \(task.id): \(error)")
            }
        }
        if !restoredTasks.isEmpty { kernel.startTimers() }
    }

    /// Sends `signal` to init's thread group, or with `all` to every thread group in the container.
    public func signalContainer(_ number: Int32, all: Bool) throws(LoaderError) {
        let signal = Signal(rawValue: number)
        guard signal.isValid else { throw LoaderError("signal \(number) is out of range 1...\(Signal.count)") }
        if all {
            for group in kernel.pidNamespace.allThreadGroups { group.kill(with: signal) }
        } else {
            kernel.signalInit(signal)
        }
    }

    /// Runs `body` once init has exited (at once if it has), with how it ended.
    public func onExit(_ body: @escaping @Sendable (ExitStatus) -> Void) {
        kernel.onInitExit { reason in
            switch reason {
            case .exited(let code): body(.exited(code))
            case .killed(let signal, _): body(.killed(signal))
            }
        }
    }
}

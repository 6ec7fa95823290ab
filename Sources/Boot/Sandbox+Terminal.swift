import Glibc
import Sentry

/// A container whose init has a terminal (runsc create made a pty and sent
/// its master over the console socket): the sandbox is the pty's session
/// leader on the host, so the host's line discipline sends it the terminal's
/// signals, and it forwards them to the container's foreground process group
/// as gVisor's DeliverToForegroundProcessGroup does.
extension Sandbox {
    /// What a pty sends its session's foreground group: ^C, ^\, ^Z, a
    /// window-size change, and the hang-up when the master is closed.
    public static let terminalSignals: [Int32] = [SIGINT, SIGQUIT, SIGTSTP, SIGWINCH, SIGHUP]

    /// Makes `fd` (the pty slave) the sandbox's controlling terminal with the
    /// terminal's signals blocked in the calling thread; call it before any
    /// thread starts, so none of them takes a signal meant for the container.
    public static func takeControllingTerminal(_ fd: Int32) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in terminalSignals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        _ = ioctl(fd, UInt(TIOCSCTTY), 0)
    }

    /// Forwards the terminal's signals for the rest of the sandbox's life.
    public func forwardTerminalSignals() throws(LoaderError) {
        _ = try SignalForwarder(signals: Sandbox.terminalSignals) { [loader, logger] signal in
            logger.debug("forwarding terminal signal \(signal) to the foreground process group")
            try? loader.signalForeground(signal, of: nil)
        }
    }
}

extension Loader {
    /// A signal the terminal of process `pid` (init when nil) made on the
    /// host goes to that terminal's foreground process group; to the process
    /// itself when it has no terminal or the terminal no foreground group.
    public func signalForeground(_ number: Int32, of pid: Int32?) throws(LoaderError) {
        let signal = Signal(rawValue: number)
        guard signal.isValid else { throw LoaderError("signal \(number) is out of range 1...\(Signal.count)") }
        try checkpointLock.withLock { _ throws(LoaderError) in
            let kernel = self.kernel
            let group = pid.map { kernel.pidNamespace.threadGroup($0) } ?? initTask.threadGroup
            guard let group, let task = group.leader else { throw LoaderError("no process \(pid ?? 1) in the container") }
            let terminal = (0...2).lazy.compactMap { try? task.fdTable.get($0).terminal }.first { $0.controls(group) }
            if let terminal, terminal.signalForeground(signal, in: kernel.pidNamespace) { return }
            group.kill(with: signal)
        }
    }
}

/// Pausing the kernel for a checkpoint (DESIGN.md: "Save only at a quiescent
/// point"): every running task leaves the application or its Sentry wait,
/// rewinds an interrupted syscall so it restarts, stores its complete
/// register and FP state in the Task, and parks until `resume()`.
extension Kernel {
    /// Brings every running task to rest. Afterwards the object graph can be
    /// saved; nothing changes it until `resume()`. A task that cannot be
    /// stopped within `timeout` fails the pause, and the kernel runs on.
    public func pause(timeout: Duration = .seconds(10)) throws(KernelPauseError) {
        let (seconds, attoseconds) = timeout.components
        try pauseGate.pause(timeoutNanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Lets the parked tasks continue where they stopped.
    public func resume() {
        pauseGate.resume()
    }

    /// Whether a pause is in effect or being brought about.
    public var isPaused: Bool { pauseGate.isRequested }
}

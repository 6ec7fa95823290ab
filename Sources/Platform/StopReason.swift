/// Why an application thread came back to the Sentry.
public enum StopReason: Equatable, Sendable {
    /// The application made a system call; the number is `registers.origRax`,
    /// the arguments are in `registers`. The host did not run it.
    case syscall(number: Int)
    /// The application faulted; the host did not deliver the signal.
    case fault(Fault)
    /// Another thread called `Interrupter.interrupt()` (or something outside
    /// signalled the stub); no application state changed.
    case interrupted
    /// The stub thread is gone (killed from outside, or the address space
    /// was released).
    case died(ExitStatus)
}

/// A synchronous fault as the kernel reported it to the stub.
public struct Fault: Equatable, Hashable, Sendable {
    /// SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP.
    public var signal: Int32
    /// The siginfo `si_code` (SEGV_MAPERR, SEGV_ACCERR, TRAP_BRKPT, …).
    public var code: Int32
    /// The siginfo `si_addr`: the faulting address, or instruction for SIGILL/SIGFPE.
    public var address: UInt64

    public init(signal: Int32, code: Int32, address: UInt64) {
        self.signal = signal
        self.code = code
        self.address = address
    }
}

/// How a stub thread ended.
public enum ExitStatus: Equatable, Hashable, Sendable {
    case exited(code: Int32)
    case killed(signal: Int32)
    /// Another thread collected the status first (e.g. `release()` raced).
    case reaped
}

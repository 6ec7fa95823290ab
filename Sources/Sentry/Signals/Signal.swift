import State

/// A signal number (1...64) and Linux's facts about it.
public struct Signal: RawRepresentable, Hashable, Sendable, SavableValue {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let count: Int32 = 64

    public static let hangup = Signal(rawValue: 1)
    public static let interrupt = Signal(rawValue: 2)
    public static let quit = Signal(rawValue: 3)
    public static let illegalInstruction = Signal(rawValue: 4)
    public static let trap = Signal(rawValue: 5)
    public static let abort = Signal(rawValue: 6)
    public static let busError = Signal(rawValue: 7)
    public static let floatingPoint = Signal(rawValue: 8)
    public static let kill = Signal(rawValue: 9)
    public static let segmentationFault = Signal(rawValue: 11)
    public static let pipe = Signal(rawValue: 13)
    public static let alarm = Signal(rawValue: 14)
    public static let terminate = Signal(rawValue: 15)
    public static let child = Signal(rawValue: 17)
    public static let cont = Signal(rawValue: 18)
    public static let virtualAlarm = Signal(rawValue: 26)
    public static let profilingAlarm = Signal(rawValue: 27)
    public static let stop = Signal(rawValue: 19)
    public static let terminalStop = Signal(rawValue: 20)
    public static let terminalInput = Signal(rawValue: 21)
    public static let terminalOutput = Signal(rawValue: 22)
    public static let user1 = Signal(rawValue: 10)
    public static let user2 = Signal(rawValue: 12)
    public static let badSystemCall = Signal(rawValue: 31)

    public var isValid: Bool { rawValue >= 1 && rawValue <= Signal.count }

    /// The bit for this signal in a sigset_t.
    public var mask: UInt64 { isValid ? 1 << UInt64(rawValue - 1) : 0 }

    /// Whether the default action terminates with a core dump (signal(7)'s "Core").
    public var defaultDumpsCore: Bool {
        [3, 4, 5, 6, 7, 8, 11, 24, 25, 31].contains(rawValue)
    }

    /// Whether the default action is to ignore (SIGCHLD, SIGURG, SIGWINCH, SIGCONT).
    public var defaultIgnored: Bool {
        [17, 18, 23, 28].contains(rawValue)
    }

    /// Whether the default action stops the process (sig_kernel_stop:
    /// SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
    public var defaultStops: Bool { (19...22).contains(rawValue) }

    /// The stops a terminal sends, which an orphaned process group ignores
    /// (nobody is left to continue it).
    public var isTerminalStop: Bool { (20...22).contains(rawValue) }

    /// SIGKILL and SIGSTOP can be neither caught nor blocked.
    public var isUncatchable: Bool { rawValue == 9 || rawValue == 19 }
}

/// A sigset_t: bit N-1 is signal N.
public struct SignalSet: RawRepresentable, Hashable, Sendable, SavableValue {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let empty = SignalSet(rawValue: 0)
    /// What can never be blocked.
    public static let unblockable = SignalSet(rawValue: Signal.kill.mask | Signal.stop.mask)

    /// The signals a fault raises, which dequeue first (SYNCHRONOUS_MASK).
    /// The signals whose default action stops (what SIGCONT discards).
    public static let stopSignals = SignalSet(rawValue: Signal.stop.mask | Signal.terminalStop.mask
        | Signal.terminalInput.mask | Signal.terminalOutput.mask)

    public static let synchronous = SignalSet(rawValue: Signal.segmentationFault.mask | Signal.busError.mask
        | Signal.illegalInstruction.mask | Signal.trap.mask | Signal.floatingPoint.mask | Signal.badSystemCall.mask)

    public func contains(_ signal: Signal) -> Bool { rawValue & signal.mask != 0 }
}

import State

/// A siginfo_t: the signal, who sent it and why. The union after the
/// header is kept as the kernel's 14 words, so a siginfo an application
/// queued (rt_sigqueueinfo) reaches the handler byte for byte.
public struct SignalInfo: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SignalInfo"
    static let unionWords = 14

    public var signal: Signal
    public var errno: Int32 = 0
    public var code: Int32
    /// The union (_sifields), as 64-bit words.
    public var fields: [UInt64]
    /// Kernel-only: queued by a POSIX timer (Linux's SIGQUEUE_PREALLOC), so
    /// its siginfo was reserved at timer_create and its taking re-arms the
    /// timer. Never set from an application's siginfo: an SI_TIMER made with
    /// rt_sigqueueinfo is an ordinary queued signal.
    public var isTimerSignal = false

    public init(signal: Signal, code: Int32) {
        self.signal = signal
        self.code = code
        fields = [UInt64](repeating: 0, count: SignalInfo.unionWords)
    }

    /// kill(2)-style: si_pid and si_uid of the sender.
    public init(signal: Signal, code: Int32, senderPID: Int32, senderUID: UInt32) {
        self.init(signal: signal, code: code)
        fields[0] = UInt64(UInt32(bitPattern: senderPID)) | UInt64(senderUID) << 32
    }

    /// A fault: si_addr.
    public init(signal: Signal, code: Int32, address: UInt64) {
        self.init(signal: signal, code: code)
        fields[0] = address
    }

    /// What the application wrote for rt_sigqueueinfo (signo is the call's).
    init(_ raw: RawSignalInfo, signal: Signal) {
        self.init(signal: signal, code: raw.code)
        errno = raw.errno
        fields = withUnsafeBytes(of: raw.fields) { Array($0.bindMemory(to: UInt64.self)) }
    }

    public var senderPID: Int32 { Int32(truncatingIfNeeded: fields[0]) }
    public var senderUID: UInt32 { UInt32(truncatingIfNeeded: fields[0] >> 32) }
    public var address: UInt64 { fields[0] }

    var raw: RawSignalInfo {
        var raw = RawSignalInfo(signo: signal.rawValue, errno: errno, code: code)
        withUnsafeMutableBytes(of: &raw.fields) { buffer in
            for (index, word) in fields.prefix(SignalInfo.unionWords).enumerated() {
                buffer.storeBytes(of: word, toByteOffset: index * 8, as: UInt64.self)
            }
        }
        return raw
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("signal", signal)
        try sink.save("errno", errno)
        try sink.save("code", code)
        try sink.save("fields", fields)
        try sink.save("isTimerSignal", isTimerSignal)
    }

    public init(from source: inout LoadSource) throws {
        signal = try source.load("signal")
        errno = try source.load("errno")
        code = try source.load("code")
        fields = try source.load("fields")
        // Images from before the mark: an SI_TIMER with a timer generation was a timer's, as then decided.
        isTimerSignal = try source.load("isTimerSignal",
                                        default: code == LinuxSignal.SI_TIMER && fields.count > 2 && fields[2] != 0)
        guard signal.isValid, fields.count == SignalInfo.unionWords else {
            throw StateError.invalidValue("SignalInfo: signal \(signal.rawValue) with \(fields.count) words")
        }
    }
}

/// A queue of pending signals (Linux's struct sigpending): the set of pending
/// signals and the siginfo queued for them. A standard signal is pending at
/// most once (a second one coalesces); real-time signals queue, each with its
/// siginfo. A signal can be pending without a siginfo when none could be
/// allocated (kill(2) past RLIMIT_SIGPENDING): it is then delivered as SI_USER.
public struct SignalQueue: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SignalQueue"

    public private(set) var pending = SignalSet.empty
    public private(set) var entries: [SignalInfo] = []

    public init() {}

    /// Whether another instance of `signal` is dropped (a pending standard signal).
    func coalesces(_ signal: Signal) -> Bool {
        signal.rawValue < LinuxSignal.SIGRTMIN && pending.contains(signal)
    }

    /// Adds `info`; with `keepInfo` false only the pending bit is set.
    mutating func enqueue(_ info: SignalInfo, keepInfo: Bool) {
        if keepInfo { entries.append(info) }
        pending.rawValue |= info.signal.mask
    }

    /// Takes the first queued instance of `signal` (Linux's collect_signal):
    /// the bit stays set while another instance is queued.
    mutating func dequeue(_ signal: Signal) -> SignalInfo {
        guard let index = entries.firstIndex(where: { $0.signal == signal }) else {
            pending.rawValue &= ~signal.mask
            return SignalInfo(signal: signal, code: LinuxSignal.SI_USER)
        }
        let info = entries.remove(at: index)
        if !entries.contains(where: { $0.signal == signal }) { pending.rawValue &= ~signal.mask }
        return info
    }

    /// Drops every instance of the signals in `set` (a handler set to SIG_IGN).
    mutating func flush(_ set: SignalSet) {
        pending.rawValue &= ~set.rawValue
        entries.removeAll { set.contains($0.signal) }
    }

    /// The pending signal to take next among those not in `blocked`: the
    /// synchronous ones (faults) first, then the lowest number (next_signal).
    func next(blocked: SignalSet) -> Signal? {
        let ready = pending.rawValue & ~blocked.rawValue
        guard ready != 0 else { return nil }
        let synchronous = ready & SignalSet.synchronous.rawValue
        let pick = synchronous != 0 ? synchronous : ready
        return Signal(rawValue: Int32(pick.trailingZeroBitCount) + 1)
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("pending", pending)
        try sink.save("entries", entries)
    }

    public init(from source: inout LoadSource) throws {
        pending = try source.load("pending")
        entries = try source.load("entries")
        guard entries.allSatisfy({ pending.contains($0.signal) }) else {
            throw StateError.invalidValue("SignalQueue: a queued siginfo for a signal that is not pending")
        }
    }
}

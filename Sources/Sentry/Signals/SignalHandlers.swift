import State
import Synchronization

/// A `struct sigaction` as the kernel ABI has it (handler, flags, restorer, mask).
public struct SignalAction: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SignalAction"

    public static let defaultHandler: UInt64 = 0   // SIG_DFL
    public static let ignoreHandler: UInt64 = 1    // SIG_IGN

    public var handler: UInt64 = SignalAction.defaultHandler
    public var flags: UInt64 = 0
    public var restorer: UInt64 = 0
    public var mask = SignalSet.empty

    public init() {}

    public init(handler: UInt64, flags: UInt64, restorer: UInt64, mask: SignalSet) {
        self.handler = handler
        self.flags = flags
        self.restorer = restorer
        self.mask = mask
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("handler", handler)
        try sink.save("flags", flags)
        try sink.save("restorer", restorer)
        try sink.save("mask", mask)
    }

    public init(from source: inout LoadSource) throws {
        handler = try source.load("handler")
        flags = try source.load("flags")
        restorer = try source.load("restorer")
        mask = try source.load("mask")
    }
}

/// The signal dispositions a thread group shares (CLONE_SIGHAND shares this object).
public final class SignalHandlers: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.SignalHandlers"

    // Guarded by `lock`, a leaf (see VFSLock).
    private let lock = Mutex<Void>(())
    private var actions = [SignalAction](repeating: SignalAction(), count: Int(Signal.count))

    public init() {}

    public func action(for signal: Signal) -> SignalAction {
        guard signal.isValid else { return SignalAction() }
        return lock.withLock { _ in actions[Int(signal.rawValue - 1)] }
    }

    /// Sets the action; returns the previous one.
    @discardableResult
    public func setAction(_ action: SignalAction, for signal: Signal) -> SignalAction {
        guard signal.isValid else { return SignalAction() }
        return lock.withLock { _ in
            let old = actions[Int(signal.rawValue - 1)]
            actions[Int(signal.rawValue - 1)] = action
            return old
        }
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("actions", lock.withLock { _ in actions })
    }

    public func load(from source: inout LoadSource) throws {
        let loaded: [SignalAction] = try source.load("actions")
        guard loaded.count == Int(Signal.count) else {
            throw StateError.invalidValue("SignalHandlers: \(loaded.count) actions, expected \(Signal.count)")
        }
        actions = loaded
    }
}

/// A `stack_t` for sigaltstack.
public struct SignalStack: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SignalStack"

    public static let onStack: Int32 = 1      // SS_ONSTACK
    public static let disabled: Int32 = 2     // SS_DISABLE
    public static let autoDisarm: Int32 = 1 << 31  // SS_AUTODISARM

    public var base: UInt64 = 0
    public var flags: Int32 = SignalStack.disabled
    public var size: UInt64 = 0

    public init() {}

    public init(base: UInt64, flags: Int32, size: UInt64) {
        self.base = base
        self.flags = flags
        self.size = size
    }

    public func contains(_ address: UInt64) -> Bool {
        flags & SignalStack.disabled == 0 && address > base && address - base <= size
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("base", base)
        try sink.save("flags", flags)
        try sink.save("size", size)
    }

    public init(from source: inout LoadSource) throws {
        base = try source.load("base")
        flags = try source.load("flags")
        size = try source.load("size")
    }
}

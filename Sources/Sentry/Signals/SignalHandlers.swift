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
    public static let notSaved: Set<String> = ["lock"]

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

    /// fork without CLONE_SIGHAND: the child's own copy of the dispositions.
    public func copy() -> SignalHandlers {
        let copy = SignalHandlers()
        copy.actions = lock.withLock { _ in actions }
        return copy
    }

    /// execve's flush_signal_handlers: every handled signal goes back to its
    /// default action, ignored ones stay ignored; flags, masks and restorers
    /// are cleared.
    public func resetForExec() {
        lock.withLock { _ in
            for index in actions.indices {
                let ignored = actions[index].handler == SignalAction.ignoreHandler
                actions[index] = SignalAction()
                if ignored { actions[index].handler = SignalAction.ignoreHandler }
            }
        }
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("actions", lock.withLock { _ in actions })
    }

    public func load(from source: inout LoadSource) throws {
        let loaded: [SignalAction] = try source.load("actions")
        guard loaded.count == Int(Signal.count) else {
            throw StateError.invalidValue("\(loaded.count) actions, expected \(Signal.count)", field: "actions")
        }
        // rt_sigaction(2) takes SIGKILL and SIGSTOP out of every handler's mask.
        for (index, action) in loaded.enumerated() {
            try ImageValidation.require(!action.mask.contains(.kill) && !action.mask.contains(.stop),
                                        field: "actions[\(index)].mask", "SIGKILL and SIGSTOP cannot be blocked")
        }
        // sigaction(2): EINVAL for a handler of SIGKILL or SIGSTOP.
        for signal in [Signal.kill, Signal.stop] {
            let index = Int(signal.rawValue - 1)
            try ImageValidation.require(loaded[index].handler == SignalAction.defaultHandler, field: "actions[\(index)]",
                                        "signal \(signal.rawValue) cannot have a handler")
        }
        actions = loaded
    }
}

/// A task's alternate signal stack (sigaltstack), as Linux keeps it:
/// sas_ss_sp, sas_ss_size and the flags as the program gave them.
public struct SignalStack: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SignalStack"

    public var base: UInt64 = 0
    public var flags: Int32 = LinuxSignal.SS_DISABLE
    public var size: UInt64 = 0

    public init() {}

    public init(base: UInt64, flags: Int32, size: UInt64) {
        self.base = base
        self.flags = flags
        self.size = size
    }

    /// __on_sig_stack: whether `sp` lies in the stack (which grows down).
    public func contains(_ sp: UInt64) -> Bool {
        sp > base && sp - base <= size
    }

    /// on_sig_stack: with SS_AUTODISARM the task is never considered on it.
    public func isOn(_ sp: UInt64) -> Bool {
        flags & LinuxSignal.SS_AUTODISARM == 0 && contains(sp)
    }

    /// sas_ss_flags: SS_DISABLE without a stack, SS_ONSTACK when `sp` is on it.
    public func flags(at sp: UInt64) -> Int32 {
        if size == 0 { return LinuxSignal.SS_DISABLE }
        return isOn(sp) ? LinuxSignal.SS_ONSTACK : 0
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
        let known = LinuxSignal.SS_ONSTACK | LinuxSignal.SS_DISABLE | LinuxSignal.SS_AUTODISARM
        try ImageValidation.require(flags & ~known == 0, field: "flags", "unknown sigaltstack flags \(flags)")
        try ImageValidation.require(!base.addingReportingOverflow(size).overflow, field: "size",
                                    "the stack wraps around the address space")
    }
}

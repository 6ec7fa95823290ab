/// Signal bookkeeping: dispositions, masks, the alternate stack, and kill for
/// the cases that need no handler delivery (default actions end the process).
extension SyscallTable {
    mutating func registerSignal() {
        register(13, Signals.rtSigaction)
        register(14, Signals.rtSigprocmask)
        register(131, Signals.sigaltstack)
        register(127, Signals.rtSigpending)
        register(62, Signals.kill)
        register(234, Signals.tgkill)
        register(200, Signals.tkill)
    }
}

enum Signals {
    static let setSize: UInt64 = 8
    static let block: Int32 = 0, unblock: Int32 = 1, setMask: Int32 = 2
    static let minimumStackSize: UInt64 = 2048

    /// struct sigaction as the x86_64 kernel reads it.
    struct RawAction: BitwiseCopyable {
        var handler: UInt64
        var flags: UInt64
        var restorer: UInt64
        var mask: UInt64
    }

    /// stack_t on x86_64.
    struct RawStack: BitwiseCopyable {
        var base: UInt64
        var flags: Int32
        var padding: Int32 = 0
        var size: UInt64
    }

    static func rtSigaction(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(3) == setSize else { throw .einval }
        let signal = Signal(rawValue: args.int(0))
        guard signal.isValid else { throw .einval }
        guard let handlers = task.threadGroup?.signalHandlers else { throw .einval }
        var newAction: SignalAction?
        if args.pointer(1) != 0 {
            guard !signal.isUncatchable else { throw .einval }
            let raw = try task.copyIn(RawAction.self, from: args.pointer(1))
            newAction = SignalAction(handler: raw.handler, flags: raw.flags, restorer: raw.restorer,
                                     mask: SignalSet(rawValue: raw.mask & ~SignalSet.unblockable.rawValue))
        }
        let old = handlers.action(for: signal)
        if args.pointer(2) != 0 {
            try task.copyOut(value: RawAction(handler: old.handler, flags: old.flags, restorer: old.restorer,
                                              mask: old.mask.rawValue), to: args.pointer(2))
        }
        if let newAction { handlers.setAction(newAction, for: signal) }
        return 0
    }

    static func rtSigprocmask(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(3) == setSize else { throw .einval }
        let old = task.signalMask
        if args.pointer(1) != 0 {
            let set = try task.copyIn(UInt64.self, from: args.pointer(1)) & ~SignalSet.unblockable.rawValue
            switch args.int(0) {
            case block: task.signalMask.rawValue |= set
            case unblock: task.signalMask.rawValue &= ~set
            case setMask: task.signalMask.rawValue = set
            default: throw .einval
            }
        }
        if args.pointer(2) != 0 { try task.copyOut(value: old.rawValue, to: args.pointer(2)) }
        return 0
    }

    static func sigaltstack(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let current = task.alternateSignalStack
        let onStack = current.contains(task.registers.rsp)
        var replacement: SignalStack?
        if args.pointer(0) != 0 {
            let raw = try task.copyIn(RawStack.self, from: args.pointer(0))
            guard !onStack else { throw .eperm }
            let mode = raw.flags & ~SignalStack.autoDisarm
            guard mode == 0 || mode == SignalStack.disabled || mode == SignalStack.onStack else { throw .einval }
            if mode == SignalStack.disabled {
                replacement = SignalStack()
            } else {
                guard raw.size >= minimumStackSize else { throw .enomem }
                replacement = SignalStack(base: raw.base, flags: raw.flags & SignalStack.autoDisarm, size: raw.size)
            }
        }
        if args.pointer(1) != 0 {
            var flags = current.flags
            if onStack { flags |= SignalStack.onStack }
            try task.copyOut(value: RawStack(base: current.base, flags: flags, size: current.size), to: args.pointer(1))
        }
        if let replacement { task.alternateSignalStack = replacement }
        return 0
    }

    static func rtSigpending(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(1) <= setSize else { throw .einval }
        try task.copyOut([UInt8](repeating: 0, count: Int(args.uint64(1))), to: args.pointer(0))
        return 0
    }

    static func kill(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let pid = args.int(0), signal = Signal(rawValue: args.int(1))
        guard signal.rawValue == 0 || signal.isValid else { throw .einval }
        // -INT_MIN does not exist; Linux's kill answers ESRCH before negating.
        guard pid != .min else { throw .esrch }
        let targets: [ThreadGroup]
        if pid > 0 {
            guard let group = task.kernel?.pidNamespace.threadGroup(pid) else { throw .esrch }
            targets = [group]
        } else if pid == -1 {
            targets = task.kernel?.pidNamespace.allThreadGroups.filter { $0.id != 1 || $0 === task.threadGroup } ?? []
        } else {
            let processGroup = pid == 0 ? (task.threadGroup?.processGroupID ?? 0) : -pid
            targets = task.kernel?.pidNamespace.allThreadGroups.filter { $0.processGroupID == processGroup } ?? []
        }
        guard !targets.isEmpty else { throw .esrch }
        if signal.rawValue != 0 { for group in targets { group.kill(with: signal) } }
        return 0
    }

    static func tgkill(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let tgid = args.int(0), tid = args.int(1), signal = Signal(rawValue: args.int(2))
        guard tgid > 0, tid > 0, signal.rawValue == 0 || signal.isValid else { throw .einval }
        guard let target = task.kernel?.pidNamespace.task(tid), target.processID == tgid,
              let group = target.threadGroup else { throw .esrch }
        if signal.rawValue != 0 { group.kill(with: signal) }
        return 0
    }

    static func tkill(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let tid = args.int(0), signal = Signal(rawValue: args.int(1))
        guard tid > 0, signal.rawValue == 0 || signal.isValid else { throw .einval }
        guard let target = task.kernel?.pidNamespace.task(tid), let group = target.threadGroup else { throw .esrch }
        if signal.rawValue != 0 { group.kill(with: signal) }
        return 0
    }
}

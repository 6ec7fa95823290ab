import State

/// What a seccomp filter returns for a syscall, as Linux encodes it: the
/// action in the high 16 bits (SECCOMP_RET_ALLOW, ERRNO, TRAP, ...), its data
/// (an errno, a tracer's message) in the low 16.
public struct SeccompAction: RawRepresentable, Hashable, Sendable, SavableValue, CustomStringConvertible {
    public let rawValue: UInt32

    /// Only the actions the Sentry carries out (LinuxSeccomp.supportedActions).
    public init?(rawValue: UInt32) {
        guard LinuxSeccomp.supportedActions.contains(rawValue & LinuxSeccomp.SECCOMP_RET_ACTION_FULL) else { return nil }
        self.rawValue = rawValue
    }

    private init(_ action: UInt32, data: UInt16 = 0) {
        rawValue = action | UInt32(data)
    }

    public static let allow = SeccompAction(LinuxSeccomp.SECCOMP_RET_ALLOW)
    public static let killThread = SeccompAction(LinuxSeccomp.SECCOMP_RET_KILL_THREAD)
    public static let killProcess = SeccompAction(LinuxSeccomp.SECCOMP_RET_KILL_PROCESS)
    public static let trap = SeccompAction(LinuxSeccomp.SECCOMP_RET_TRAP)
    public static let log = SeccompAction(LinuxSeccomp.SECCOMP_RET_LOG)
    public static func errno(_ errno: UInt16) -> SeccompAction { SeccompAction(LinuxSeccomp.SECCOMP_RET_ERRNO, data: errno) }
    public static func trace(_ message: UInt16) -> SeccompAction { SeccompAction(LinuxSeccomp.SECCOMP_RET_TRACE, data: message) }

    /// SECCOMP_RET_ACTION_FULL's part.
    public var action: UInt32 { rawValue & LinuxSeccomp.SECCOMP_RET_ACTION_FULL }
    /// SECCOMP_RET_DATA's part.
    public var data: UInt32 { rawValue & LinuxSeccomp.SECCOMP_RET_DATA }

    /// libseccomp's name for the log.
    public var description: String {
        switch action {
        case LinuxSeccomp.SECCOMP_RET_ALLOW: "SCMP_ACT_ALLOW"
        case LinuxSeccomp.SECCOMP_RET_ERRNO: "SCMP_ACT_ERRNO(\(data))"
        case LinuxSeccomp.SECCOMP_RET_KILL_THREAD: "SCMP_ACT_KILL_THREAD"
        case LinuxSeccomp.SECCOMP_RET_KILL_PROCESS: "SCMP_ACT_KILL_PROCESS"
        case LinuxSeccomp.SECCOMP_RET_TRAP: "SCMP_ACT_TRAP"
        case LinuxSeccomp.SECCOMP_RET_LOG: "SCMP_ACT_LOG"
        case LinuxSeccomp.SECCOMP_RET_TRACE: "SCMP_ACT_TRACE(\(data))"
        default: "0x\(String(rawValue, radix: 16))"
        }
    }
}

/// A comparison of one syscall argument, as libseccomp's `scmp_arg_cmp`:
/// the whole 64-bit register, unsigned.
public struct SeccompCondition: SavableStruct, Hashable, Sendable {
    public static let savedTypeName = "sentry.SeccompCondition"

    public enum Operator: UInt8, SavableValue, Sendable {
        case notEqual = 1, lessThan, lessOrEqual, equal, greaterOrEqual, greaterThan, maskedEqual
    }

    /// 0...5.
    public let argument: Int
    public let op: Operator
    public let value: UInt64
    /// The value a MASKED_EQ compares the masked argument with.
    public let valueTwo: UInt64

    /// nil when `argument` is not 0...5.
    public init?(argument: Int, op: Operator, value: UInt64, valueTwo: UInt64 = 0) {
        guard (0..<SeccompFilter.argumentCount).contains(argument) else { return nil }
        self.argument = argument
        self.op = op
        self.value = value
        self.valueTwo = valueTwo
    }

    func holds(for arguments: SyscallArguments) -> Bool {
        let register = arguments[argument]
        switch op {
        case .notEqual: return register != value
        case .lessThan: return register < value
        case .lessOrEqual: return register <= value
        case .equal: return register == value
        case .greaterOrEqual: return register >= value
        case .greaterThan: return register > value
        case .maskedEqual: return register & value == valueTwo
        }
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("argument", argument)
        try sink.save("op", op)
        try sink.save("value", value)
        try sink.save("valueTwo", valueTwo)
    }

    public init(from source: inout LoadSource) throws {
        argument = try source.load("argument")
        op = try source.load("op")
        value = try source.load("value")
        valueTwo = try source.load("valueTwo")
        try ImageValidation.require((0..<SeccompFilter.argumentCount).contains(argument), field: "argument",
                                    "\(argument) is not a syscall argument (0...5)")
    }
}

/// One rule of a filter: for syscall `number`, `action` when every condition holds.
public struct SeccompRule: SavableStruct, Hashable, Sendable {
    public static let savedTypeName = "sentry.SeccompRule"

    public let number: Int
    public let action: SeccompAction
    public let conditions: [SeccompCondition]

    public init(number: Int, action: SeccompAction, conditions: [SeccompCondition] = []) {
        self.number = number
        self.action = action
        self.conditions = conditions
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("number", number)
        try sink.save("action", action)
        try sink.save("conditions", conditions)
    }

    public init(from source: inout LoadSource) throws {
        number = try source.load("number")
        action = try source.load("action")
        conditions = try source.load("conditions")
        try ImageValidation.require((0..<SeccompFilter.tableSize).contains(number), field: "number",
                                    "\(number) is not an x86_64 syscall number")
    }
}

/// A seccomp filter the Sentry evaluates on each of a task's syscalls before
/// dispatching it (as gVisor's Sentry does for the OCI profile): rules compiled
/// once into a table indexed by syscall number, each entry holding that
/// syscall's rules in order; the first whose conditions hold decides, else
/// the default action. A syscall with no rule costs one array load.
///
/// The rules are saved (a restored task keeps its filter); the table is
/// rebuilt from them.
public struct SeccompFilter: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SeccompFilter"
    public static let notSaved: Set<String> = [
        "table", // derived from `rules` when made or loaded
    ]

    /// Arguments a condition may compare (x86_64 passes six in registers).
    static let argumentCount = 6
    /// Syscall numbers the table covers: every x86_64 number (asm/unistd_64.h), well past the last one.
    public static let tableSize = 512

    public let defaultAction: SeccompAction
    /// In the order the profile gave them.
    public let rules: [SeccompRule]
    /// `rules` by number; empty entries for numbers with none.
    private let table: [[SeccompRule]]

    /// Rules whose number is outside the table are dropped (no syscall has it).
    public init(defaultAction: SeccompAction, rules: [SeccompRule]) {
        self.defaultAction = defaultAction
        self.rules = rules.filter { (0..<Self.tableSize).contains($0.number) }
        table = Self.table(of: self.rules)
    }

    private static func table(of rules: [SeccompRule]) -> [[SeccompRule]] {
        var table = [[SeccompRule]](repeating: [], count: tableSize)
        for rule in rules { table[rule.number].append(rule) }
        return table
    }

    /// The action for syscall `number` with `arguments`.
    @inline(__always)
    public func action(for number: Int, _ arguments: SyscallArguments) -> SeccompAction {
        guard number >= 0, number < table.count else { return defaultAction }
        for rule in table[number] where rule.conditions.allSatisfy({ $0.holds(for: arguments) }) {
            return rule.action
        }
        return defaultAction
    }

    public static func == (lhs: SeccompFilter, rhs: SeccompFilter) -> Bool {
        lhs.defaultAction == rhs.defaultAction && lhs.rules == rhs.rules
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("defaultAction", defaultAction)
        try sink.save("rules", rules)
    }

    public init(from source: inout LoadSource) throws {
        defaultAction = try source.load("defaultAction")
        rules = try source.load("rules")
        table = Self.table(of: rules)
    }
}

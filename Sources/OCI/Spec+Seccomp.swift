/// The `linux.seccomp` profile read into typed rules, as runc gives it to
/// libseccomp: what the strings name is checked here, once, so a bad profile
/// is an error at `create`/`run` naming the field, and the runtime compiles
/// only well-formed rules. Syscall names stay names: which numbers they are is
/// the kernel's business (names the architecture lacks are ignored there, as
/// libseccomp and runc do).
extension Spec.Seccomp {
    /// What a filter does with a syscall (libseccomp's SCMP_ACT_*).
    public enum Action: Equatable, Sendable {
        case allow
        /// Fails the syscall with this errno (EPERM when the profile gives none).
        case errno(UInt16)
        /// SCMP_ACT_KILL and SCMP_ACT_KILL_THREAD: the thread dies of SIGSYS.
        case killThread
        case killProcess
        /// SIGSYS with si_code SYS_SECCOMP, the handler may run.
        case trap
        /// Allowed, and logged.
        case log
        /// For a ptrace tracer; with none, the syscall fails with ENOSYS.
        case trace(UInt16)
    }

    /// A comparison of one argument (libseccomp's SCMP_CMP_*).
    public enum Operator: String, Sendable, CaseIterable {
        case notEqual = "SCMP_CMP_NE"
        case lessThan = "SCMP_CMP_LT"
        case lessOrEqual = "SCMP_CMP_LE"
        case equal = "SCMP_CMP_EQ"
        case greaterOrEqual = "SCMP_CMP_GE"
        case greaterThan = "SCMP_CMP_GT"
        /// `(argument & value) == valueTwo`.
        case maskedEqual = "SCMP_CMP_MASKED_EQ"
    }

    public struct Condition: Equatable, Sendable {
        /// 0...5.
        public var index: Int
        public var op: Operator
        public var value: UInt64
        public var valueTwo: UInt64
    }

    /// One rule: the syscalls it names, and the action when every condition holds.
    public struct Rule: Equatable, Sendable {
        public var names: [String]
        public var action: Action
        public var conditions: [Condition]
    }

    /// The profile as the runtime enforces it.
    public struct Parsed: Equatable, Sendable {
        public var defaultAction: Action
        /// In the profile's order: the first rule that matches a syscall decides
        /// (runtime-spec: "only the first entry is effective").
        public var rules: [Rule]
    }

    /// A profile field that cannot be enforced, with the reason.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        /// The field under `linux.seccomp`, e.g. `syscalls[2].args[0].op`.
        public var field: String
        public var reason: String
        public var description: String { "linux.seccomp.\(field): \(reason)" }
    }

    /// The architectures runtime-spec names. As runc's filter, ours always
    /// covers the native one (x86_64) whatever the list says; the others name
    /// syscall tables the Sentry does not run.
    static let knownArchitectures: Set<String> = [
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64",
        "SCMP_ARCH_M68K", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ]
    /// The flags runtime-spec defines for seccomp(2); each only changes how
    /// the host kernel logs or synchronizes, which the Sentry has no use for.
    static let knownFlags: Set<String> = [
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    ]
    /// Syscall arguments a comparison may name.
    static let argumentCount: UInt32 = 6

    /// Checks every field and returns the typed profile.
    public func parsed() throws(Invalid) -> Parsed {
        let defaultAction = try Self.action(defaultAction, errnoRet: defaultErrnoRet, field: "defaultAction")
        for (index, architecture) in (architectures ?? []).enumerated() where !Self.knownArchitectures.contains(architecture) {
            throw Invalid(field: "architectures[\(index)]", reason: "unknown architecture \"\(architecture)\"")
        }
        for (index, flag) in (flags ?? []).enumerated() where !Self.knownFlags.contains(flag) {
            throw Invalid(field: "flags[\(index)]", reason: "unknown flag \"\(flag)\"")
        }
        if let listenerPath, !listenerPath.isEmpty {
            throw Invalid(field: "listenerPath", reason: "seccomp user notification (SCMP_ACT_NOTIFY) is not supported")
        }
        var rules: [Rule] = []
        for (index, syscall) in syscalls.enumerated() {
            let field = "syscalls[\(index)]"
            if syscall.names.isEmpty { throw Invalid(field: "\(field).names", reason: "empty: the rule names no syscall") }
            let action = try Self.action(syscall.action, errnoRet: syscall.errnoRet, field: "\(field).action")
            var conditions: [Condition] = []
            for (argumentIndex, argument) in (syscall.args ?? []).enumerated() {
                let argumentField = "\(field).args[\(argumentIndex)]"
                guard argument.index < Self.argumentCount else {
                    throw Invalid(field: "\(argumentField).index", reason: "\(argument.index) is past the last syscall argument (5)")
                }
                guard let op = Operator(rawValue: argument.op) else {
                    throw Invalid(field: "\(argumentField).op", reason: "unknown comparison \"\(argument.op)\" (expected one of "
                                  + Operator.allCases.map(\.rawValue).joined(separator: ", ") + ")")
                }
                conditions.append(Condition(index: Int(argument.index), op: op, value: argument.value,
                                            valueTwo: argument.valueTwo ?? 0))
            }
            // runc: libseccomp compares an argument once per rule, so comparisons
            // that share an index become one rule each (any of them matches).
            if Set(conditions.map(\.index)).count < conditions.count {
                rules += conditions.map { Rule(names: syscall.names, action: action, conditions: [$0]) }
            } else {
                rules.append(Rule(names: syscall.names, action: action, conditions: conditions))
            }
        }
        // runc skips rules whose action is the default one (libseccomp refuses them).
        rules.removeAll { $0.action == defaultAction }
        return Parsed(defaultAction: defaultAction, rules: rules)
    }

    /// The action `name` names; `errnoRet` is the errno of SCMP_ACT_ERRNO (and
    /// the message of SCMP_ACT_TRACE), 16 bits as in the filter's return value.
    static func action(_ name: String, errnoRet: UInt32?, field: String) throws(Invalid) -> Action {
        let data: UInt16
        if let errnoRet {
            guard let value = UInt16(exactly: errnoRet) else {
                throw Invalid(field: field, reason: "errnoRet \(errnoRet) does not fit the filter's 16-bit data")
            }
            data = value
        } else {
            data = name == "SCMP_ACT_ERRNO" ? Self.eperm : 0
        }
        switch name {
        case "SCMP_ACT_ALLOW": return .allow
        case "SCMP_ACT_ERRNO": return .errno(data)
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return .killThread
        case "SCMP_ACT_KILL_PROCESS": return .killProcess
        case "SCMP_ACT_TRAP": return .trap
        case "SCMP_ACT_LOG": return .log
        case "SCMP_ACT_TRACE": return .trace(data)
        case "SCMP_ACT_NOTIFY":
            throw Invalid(field: field, reason: "SCMP_ACT_NOTIFY (seccomp user notification) is not supported")
        case "": throw Invalid(field: field, reason: "missing")
        default: throw Invalid(field: field, reason: "unknown action \"\(name)\"")
        }
    }

    /// The actions `action(_:errnoRet:field:)` enforces, for `runsc features`.
    public static let actionNames = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                                     "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
    /// The architecture whose syscalls the filter sees (the others' names are accepted and ignored).
    public static let nativeArchitecture = "SCMP_ARCH_X86_64"

    /// runc's errno when SCMP_ACT_ERRNO gives none.
    static let eperm: UInt16 = 1
}

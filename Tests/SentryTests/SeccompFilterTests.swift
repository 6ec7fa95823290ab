import State
import Testing
@testable import Sentry

/// The Sentry's seccomp filter: each comparison on the whole 64-bit
/// argument, a rule's conditions all holding, the first matching rule of a
/// syscall deciding, the default action for the rest, and the filter kept
/// in an image.
@Suite struct SeccompFilterTests {
    static let getpid = 39, mkdir = 83, clone = 56

    static func condition(_ op: SeccompCondition.Operator, _ value: UInt64, _ valueTwo: UInt64 = 0,
                          argument: Int = 0) throws -> SeccompCondition {
        try #require(SeccompCondition(argument: argument, op: op, value: value, valueTwo: valueTwo))
    }

    @Test(arguments: [
        (SeccompCondition.Operator.notEqual, UInt64(5), [4, 6, 1 << 40], [5]),
        (.lessThan, 5, [0, 4], [5, 6, UInt64.max]),
        (.lessOrEqual, 5, [0, 5], [6, 1 << 32]),
        (.equal, 5, [5], [4, 6, 5 | 1 << 32]),
        (.greaterOrEqual, 5, [5, UInt64.max], [0, 4]),
        (.greaterThan, 5, [6, 1 << 32], [5, 0]),
    ] as [(SeccompCondition.Operator, UInt64, [UInt64], [UInt64])])
    func comparisonsAreOnTheWhole64BitRegisterUnsigned(_ op: SeccompCondition.Operator, _ value: UInt64,
                                                      _ holding: [UInt64], _ failing: [UInt64]) throws {
        let condition = try Self.condition(op, value, argument: 2)
        for argument in holding { #expect(condition.holds(for: SyscallArguments(0, 0, argument)), "\(argument)") }
        for argument in failing { #expect(!condition.holds(for: SyscallArguments(0, 0, argument)), "\(argument)") }
    }

    /// Docker's clone rule: no namespace flag (CLONE_NEW*) may be set.
    @Test func maskedEqualComparesTheMaskedArgument() throws {
        let noNamespaces = try Self.condition(.maskedEqual, 0x7E02_0000, 0)
        #expect(noNamespaces.holds(for: SyscallArguments(LinuxProcess.CLONE_VM | LinuxProcess.CLONE_THREAD | 0x11)))
        #expect(!noNamespaces.holds(for: SyscallArguments(LinuxProcess.CLONE_NEWPID)))
        #expect(!noNamespaces.holds(for: SyscallArguments(LinuxProcess.CLONE_NEWNS | LinuxProcess.CLONE_VM)))
        let lowBits = try Self.condition(.maskedEqual, 0xff, 0x11)
        #expect(lowBits.holds(for: SyscallArguments(0xab11)))
        #expect(!lowBits.holds(for: SyscallArguments(0x12)))
    }

    @Test func anArgumentPastTheSixthIsRefused() {
        #expect(SeccompCondition(argument: 6, op: .equal, value: 0) == nil)
        #expect(SeccompCondition(argument: -1, op: .equal, value: 0) == nil)
        #expect(SeccompCondition(argument: 5, op: .equal, value: 0) != nil)
    }

    @Test func theFirstRuleWhoseConditionsAllHoldDecidesElseTheDefault() throws {
        let filter = SeccompFilter(defaultAction: .errno(1), rules: [
            SeccompRule(number: Self.getpid, action: .allow),
            SeccompRule(number: Self.clone, action: .trap,
                        conditions: [try Self.condition(.equal, 1), try Self.condition(.equal, 2, argument: 1)]),
            SeccompRule(number: Self.clone, action: .errno(22), conditions: [try Self.condition(.equal, 1)]),
            SeccompRule(number: Self.clone, action: .allow),
        ])
        #expect(filter.action(for: Self.getpid, SyscallArguments()) == .allow)
        #expect(filter.action(for: Self.clone, SyscallArguments(1, 2)) == .trap)
        #expect(filter.action(for: Self.clone, SyscallArguments(1, 3)) == .errno(22))
        #expect(filter.action(for: Self.clone, SyscallArguments(0, 2)) == .allow)
        #expect(filter.action(for: Self.mkdir, SyscallArguments()) == .errno(1))
        // Numbers no syscall has (negative, past the table, x32's bit) get the default.
        for number in [-1, SeccompFilter.tableSize, 0x4000_0000 + Self.getpid, Int.max] {
            #expect(filter.action(for: number, SyscallArguments()) == .errno(1), "\(number)")
        }
    }

    @Test func actionsAreLinuxsFilterReturnValues() {
        #expect(SeccompAction.allow.rawValue == LinuxSeccomp.SECCOMP_RET_ALLOW)
        #expect(SeccompAction.errno(13).rawValue == LinuxSeccomp.SECCOMP_RET_ERRNO | 13)
        #expect(SeccompAction.errno(13).data == 13)
        #expect(SeccompAction.trace(7).action == LinuxSeccomp.SECCOMP_RET_TRACE)
        #expect(SeccompAction.killProcess.rawValue == LinuxSeccomp.SECCOMP_RET_KILL_PROCESS)
        #expect(SeccompAction(rawValue: 0x0004_0000) == nil, "0x0004_0000 is no action")
        #expect(SeccompAction(rawValue: LinuxSeccomp.SECCOMP_RET_LOG) == .log)
    }

    @Test func syscallNamesResolveToX8664Numbers() {
        #expect(SyscallTable.number(of: "getpid") == Self.getpid)
        #expect(SyscallTable.number(of: "mkdir") == Self.mkdir)
        #expect(SyscallTable.number(of: "clone3") == 435)
        // Other architectures' syscalls: ignored by the profile's compiler.
        #expect(SyscallTable.number(of: "chown32") == nil)
        #expect(SyscallTable.number(of: "arm_fadvise64_64") == nil)
    }

    @Test func aTasksFilterIsSavedAndEnforcedAfterALoad() throws {
        let (kernel, task) = try KernelState().makeKernel()
        task.seccomp = SeccompFilter(defaultAction: .allow, rules: [
            SeccompRule(number: Self.mkdir, action: .errno(1)),
            SeccompRule(number: Self.clone, action: .killProcess,
                        conditions: [try Self.condition(.maskedEqual, 0x7E02_0000, 0x2000_0000, argument: 0)]),
        ])
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        let restored = try #require(loaded.pidNamespace.task(1)?.seccomp)
        #expect(restored == task.seccomp)
        #expect(restored.action(for: Self.mkdir, SyscallArguments()) == .errno(1))
        #expect(restored.action(for: Self.clone, SyscallArguments(LinuxProcess.CLONE_NEWPID)) == .killProcess)
        #expect(restored.action(for: Self.clone, SyscallArguments(LinuxProcess.CLONE_VM)) == .allow)
    }

    @Test func aTaskWithoutAFilterLoadsWithout() throws {
        let (kernel, _) = try KernelState().makeKernel()
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        #expect(try #require(loaded.pidNamespace.task(1)).seccomp == nil)
    }
}

/// An application's classic BPF filter: refused where Linux's checker
/// refuses it, and run over seccomp_data as Linux runs it.
@Suite struct SeccompProgramTests {
    typealias I = SeccompProgram.Instruction
    typealias B = LinuxBPF
    static let loadNumber = I(code: B.BPF_LD | B.BPF_W | B.BPF_ABS, k: 0)
    static let allow = I(code: B.BPF_RET | B.BPF_K, k: LinuxSeccomp.SECCOMP_RET_ALLOW)

    /// getpid → ERRNO(5); argument 1's high word 1 → TRAP; else ALLOW, through scratch memory and X.
    @Test func aProgramSeesTheNumberArgumentsAndArchitecture() throws {
        let program = try #require(SeccompProgram([
            I(code: B.BPF_LD | B.BPF_W | B.BPF_ABS, k: 4),
            I(code: B.BPF_JMP | B.BPF_JEQ | B.BPF_K, jt: 1, jf: 0, k: LinuxSeccomp.AUDIT_ARCH_X86_64),
            I(code: B.BPF_RET | B.BPF_K, k: LinuxSeccomp.SECCOMP_RET_KILL_PROCESS),
            Self.loadNumber,
            I(code: B.BPF_ST, k: 3),
            I(code: B.BPF_LDX | B.BPF_MEM, k: 3),
            I(code: B.BPF_MISC | B.BPF_TXA),
            I(code: B.BPF_JMP | B.BPF_JEQ | B.BPF_K, jt: 0, jf: 1, k: 39),
            I(code: B.BPF_RET | B.BPF_K, k: LinuxSeccomp.SECCOMP_RET_ERRNO | 5),
            I(code: B.BPF_LD | B.BPF_W | B.BPF_ABS, k: 16 + 8 + 4),
            I(code: B.BPF_JMP | B.BPF_JSET | B.BPF_K, jt: 0, jf: 1, k: 1),
            I(code: B.BPF_RET | B.BPF_K, k: LinuxSeccomp.SECCOMP_RET_TRAP),
            Self.allow,
        ]))
        #expect(program.run(number: 39, arguments: SyscallArguments(), instructionPointer: 0) == LinuxSeccomp.SECCOMP_RET_ERRNO | 5)
        #expect(program.run(number: 1, arguments: SyscallArguments(0, 1 << 32), instructionPointer: 0) == LinuxSeccomp.SECCOMP_RET_TRAP)
        #expect(program.run(number: 1, arguments: SyscallArguments(0, 1), instructionPointer: 0) == LinuxSeccomp.SECCOMP_RET_ALLOW)
    }

    @Test(arguments: [
        ("empty", [I]()),
        ("no return last", [Self.loadNumber]),
        ("unaligned load", [I(code: B.BPF_LD | B.BPF_W | B.BPF_ABS, k: 2), Self.allow]),
        ("load past seccomp_data", [I(code: B.BPF_LD | B.BPF_W | B.BPF_ABS, k: 64), Self.allow]),
        ("halfword load", [I(code: B.BPF_LD | 0x08 | B.BPF_ABS, k: 0), Self.allow]),
        ("jump past the end", [I(code: B.BPF_JMP | B.BPF_JEQ | B.BPF_K, jt: 1, jf: 0, k: 0), Self.allow]),
        ("ja past the end", [I(code: B.BPF_JMP | B.BPF_JA, k: 1), Self.allow]),
        ("division by constant 0", [I(code: B.BPF_ALU | B.BPF_DIV | B.BPF_K, k: 0), Self.allow]),
        ("shift by 32", [I(code: B.BPF_ALU | B.BPF_LSH | B.BPF_K, k: 32), Self.allow]),
        ("scratch word 16", [I(code: B.BPF_ST, k: 16), Self.allow]),
        ("scratch loaded before stored", [I(code: B.BPF_LD | B.BPF_MEM, k: 0), Self.allow]),
        ("stored on one path only", [I(code: B.BPF_JMP | B.BPF_JEQ | B.BPF_K, jt: 1, jf: 0, k: 0), I(code: B.BPF_ST, k: 0),
                                     I(code: B.BPF_LD | B.BPF_MEM, k: 0), Self.allow]),
        ("unknown class member", [I(code: B.BPF_RET | 0x18), Self.allow]),
    ])
    func programsLinuxRefusesAreRefused(_ what: String, _ instructions: [I]) {
        #expect(SeccompProgram(instructions) == nil, "\(what)")
    }

    @Test func aProgramOfTheLongestLengthIsAccepted() {
        let program = [I](repeating: I(code: B.BPF_ALU | B.BPF_ADD | B.BPF_K, k: 1), count: LinuxSeccomp.BPF_MAXINSNS - 1)
        #expect(SeccompProgram(program + [I(code: B.BPF_RET | B.BPF_A)]) != nil)
        #expect(SeccompProgram(program + [Self.allow, Self.allow]) == nil)
    }
}

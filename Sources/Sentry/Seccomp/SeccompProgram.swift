import State

/// A classic BPF filter an application installed with seccomp(2) or
/// prctl(PR_SET_SECCOMP), checked as Linux's bpf_check_classic and
/// seccomp_check_filter check it (so what Linux refuses with EINVAL is
/// refused here), and run by an interpreter over the syscall's seccomp_data.
public struct SeccompProgram: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SeccompProgram"

    /// One `struct sock_filter`.
    public struct Instruction: Equatable, Sendable {
        public var code: UInt16
        public var jt: UInt8
        public var jf: UInt8
        public var k: UInt32

        public init(code: UInt16, jt: UInt8 = 0, jf: UInt8 = 0, k: UInt32 = 0) {
            self.code = code
            self.jt = jt
            self.jf = jf
            self.k = k
        }

        /// The 8 bytes of a sock_filter, little-endian.
        init(bytes: ArraySlice<UInt8>) {
            let b = Array(bytes)
            code = b.littleEndian(UInt16.self, at: 0)
            jt = b[2]
            jf = b[3]
            k = b.littleEndian(UInt32.self, at: 4)
        }

        var packed: UInt64 { UInt64(code) << 48 | UInt64(jt) << 40 | UInt64(jf) << 32 | UInt64(k) }

        init(packed: UInt64) {
            code = UInt16(truncatingIfNeeded: packed >> 48)
            jt = UInt8(truncatingIfNeeded: packed >> 40)
            jf = UInt8(truncatingIfNeeded: packed >> 32)
            k = UInt32(truncatingIfNeeded: packed)
        }
    }

    public let instructions: [Instruction]

    /// nil when Linux would refuse the program (EINVAL).
    public init?(_ instructions: [Instruction]) {
        guard Self.isValid(instructions) else { return nil }
        self.instructions = instructions
    }

    /// What the filter returns for syscall `number` with `arguments` at `instructionPointer`.
    func run(number: Int, arguments: SyscallArguments, instructionPointer: UInt64) -> UInt32 {
        typealias B = LinuxBPF
        var a: UInt32 = 0, x: UInt32 = 0
        var memory = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
                      UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))
        var pc = 0
        while pc < instructions.count {
            let op = instructions[pc]
            pc += 1
            switch B.BPF_CLASS(op.code) {
            case B.BPF_LD:
                switch B.BPF_MODE(op.code) {
                case B.BPF_ABS: a = Self.word(at: op.k, number: number, arguments: arguments, instructionPointer: instructionPointer)
                case B.BPF_LEN: a = LinuxSeccomp.seccompDataSize
                case B.BPF_MEM: a = Self.load(&memory, op.k)
                default: a = op.k
                }
            case B.BPF_LDX:
                switch B.BPF_MODE(op.code) {
                case B.BPF_LEN: x = LinuxSeccomp.seccompDataSize
                case B.BPF_MEM: x = Self.load(&memory, op.k)
                default: x = op.k
                }
            case B.BPF_ST: Self.store(&memory, op.k, a)
            case B.BPF_STX: Self.store(&memory, op.k, x)
            case B.BPF_ALU:
                let operand = B.BPF_SRC(op.code) == B.BPF_X ? x : op.k
                switch B.BPF_OP(op.code) {
                case B.BPF_ADD: a = a &+ operand
                case B.BPF_SUB: a = a &- operand
                case B.BPF_MUL: a = a &* operand
                case B.BPF_DIV:
                    // Classic BPF's division by a zero X ends the program with 0.
                    guard operand != 0 else { return 0 }
                    a /= operand
                case B.BPF_MOD:
                    guard operand != 0 else { return 0 }
                    a %= operand
                case B.BPF_OR: a |= operand
                case B.BPF_AND: a &= operand
                case B.BPF_XOR: a ^= operand
                case B.BPF_LSH: a = operand < 32 ? a << operand : 0
                case B.BPF_RSH: a = operand < 32 ? a >> operand : 0
                default: a = 0 &- a // BPF_NEG
                }
            case B.BPF_JMP:
                let operand = B.BPF_SRC(op.code) == B.BPF_X ? x : op.k
                let taken: Bool
                switch B.BPF_OP(op.code) {
                case B.BPF_JA:
                    pc += Int(op.k)
                    continue
                case B.BPF_JEQ: taken = a == operand
                case B.BPF_JGT: taken = a > operand
                case B.BPF_JGE: taken = a >= operand
                default: taken = a & operand != 0 // BPF_JSET
                }
                pc += Int(taken ? op.jt : op.jf)
            case B.BPF_RET:
                return B.BPF_RVAL(op.code) == B.BPF_A ? a : op.k
            default: // BPF_MISC
                if B.BPF_MISCOP(op.code) == B.BPF_TAX { x = a } else { a = x }
            }
        }
        // The checker makes the last instruction a return.
        return LinuxSeccomp.SECCOMP_RET_KILL_PROCESS
    }

    /// The 32-bit word of seccomp_data at `offset` (checked: aligned, inside).
    private static func word(at offset: UInt32, number: Int, arguments: SyscallArguments,
                             instructionPointer: UInt64) -> UInt32 {
        func half(_ value: UInt64) -> UInt32 {
            UInt32(truncatingIfNeeded: offset % 8 == 0 ? value : value >> 32)
        }
        switch offset {
        case 0: return UInt32(truncatingIfNeeded: number)
        case 4: return LinuxSeccomp.AUDIT_ARCH_X86_64
        case 8, 12: return half(instructionPointer)
        default: return half(arguments[Int((offset - 16) / 8)])
        }
    }

    private typealias Memory = (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32,
                                UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32)

    private static func load(_ memory: inout Memory, _ index: UInt32) -> UInt32 {
        withUnsafeBytes(of: &memory) { $0.load(fromByteOffset: Int(index % LinuxBPF.BPF_MEMWORDS) * 4, as: UInt32.self) }
    }

    private static func store(_ memory: inout Memory, _ index: UInt32, _ value: UInt32) {
        withUnsafeMutableBytes(of: &memory) {
            $0.storeBytes(of: value, toByteOffset: Int(index % LinuxBPF.BPF_MEMWORDS) * 4, as: UInt32.self)
        }
    }

    /// bpf_check_classic and seccomp_check_filter: a known seccomp opcode
    /// each, loads of seccomp_data aligned and inside it, no division or
    /// shift by a constant out of range, scratch words in range and stored
    /// before they are loaded on every path, jumps forward inside the
    /// program, and a return last.
    static func isValid(_ program: [Instruction]) -> Bool {
        typealias B = LinuxBPF
        let count = program.count
        guard count >= 1, count <= LinuxSeccomp.BPF_MAXINSNS else { return false }
        for (pc, op) in program.enumerated() {
            let code = op.code
            switch B.BPF_CLASS(code) {
            case B.BPF_LD:
                switch code {
                case B.BPF_LD | B.BPF_W | B.BPF_ABS:
                    guard op.k % 4 == 0, op.k < LinuxSeccomp.seccompDataSize else { return false }
                case B.BPF_LD | B.BPF_W | B.BPF_LEN, B.BPF_LD | B.BPF_IMM: break
                case B.BPF_LD | B.BPF_MEM: guard op.k < B.BPF_MEMWORDS else { return false }
                default: return false
                }
            case B.BPF_LDX:
                switch code {
                case B.BPF_LDX | B.BPF_W | B.BPF_LEN, B.BPF_LDX | B.BPF_IMM: break
                case B.BPF_LDX | B.BPF_MEM: guard op.k < B.BPF_MEMWORDS else { return false }
                default: return false
                }
            case B.BPF_ST, B.BPF_STX:
                guard code == B.BPF_CLASS(code), op.k < B.BPF_MEMWORDS else { return false }
            case B.BPF_ALU:
                let operation = B.BPF_OP(code)
                let known = [B.BPF_ADD, B.BPF_SUB, B.BPF_MUL, B.BPF_DIV, B.BPF_OR, B.BPF_AND, B.BPF_LSH,
                             B.BPF_RSH, B.BPF_MOD, B.BPF_XOR]
                if operation == B.BPF_NEG {
                    guard code == B.BPF_ALU | B.BPF_NEG else { return false }
                } else {
                    guard known.contains(operation), code == B.BPF_ALU | operation | B.BPF_SRC(code) else { return false }
                    if B.BPF_SRC(code) == B.BPF_K {
                        if (operation == B.BPF_DIV || operation == B.BPF_MOD) && op.k == 0 { return false }
                        if (operation == B.BPF_LSH || operation == B.BPF_RSH) && op.k >= 32 { return false }
                    }
                }
            case B.BPF_JMP:
                let operation = B.BPF_OP(code)
                if operation == B.BPF_JA {
                    guard code == B.BPF_JMP | B.BPF_JA, UInt64(op.k) < UInt64(count - pc - 1) else { return false }
                } else {
                    guard [B.BPF_JEQ, B.BPF_JGT, B.BPF_JGE, B.BPF_JSET].contains(operation),
                          code == B.BPF_JMP | operation | B.BPF_SRC(code),
                          pc + Int(op.jt) + 1 < count, pc + Int(op.jf) + 1 < count else { return false }
                }
            case B.BPF_RET:
                guard code == B.BPF_RET | B.BPF_K || code == B.BPF_RET | B.BPF_A else { return false }
            default: // BPF_MISC
                guard code == B.BPF_MISC | B.BPF_TAX || code == B.BPF_MISC | B.BPF_TXA else { return false }
            }
        }
        guard B.BPF_CLASS(program[count - 1].code) == B.BPF_RET else { return false }
        return scratchIsStoredBeforeLoaded(program)
    }

    /// check_load_and_stores: on every path, a scratch word is stored before it is loaded.
    private static func scratchIsStoredBeforeLoaded(_ program: [Instruction]) -> Bool {
        typealias B = LinuxBPF
        var masks = [UInt16](repeating: 0xffff, count: program.count)
        var valid: UInt16 = 0
        for (pc, op) in program.enumerated() {
            valid &= masks[pc]
            switch op.code {
            case B.BPF_ST, B.BPF_STX:
                valid |= 1 << UInt16(op.k)
            case B.BPF_LD | B.BPF_MEM, B.BPF_LDX | B.BPF_MEM:
                guard valid & (1 << UInt16(op.k)) != 0 else { return false }
            default:
                guard B.BPF_CLASS(op.code) == B.BPF_JMP else { break }
                if B.BPF_OP(op.code) == B.BPF_JA {
                    masks[pc + 1 + Int(op.k)] &= valid
                } else {
                    masks[pc + 1 + Int(op.jt)] &= valid
                    masks[pc + 1 + Int(op.jf)] &= valid
                }
                valid = 0xffff
            }
        }
        return true
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("instructions", instructions.map(\.packed))
    }

    public init(from source: inout LoadSource) throws {
        let packed: [UInt64] = try source.load("instructions")
        instructions = packed.map(Instruction.init(packed:))
        try ImageValidation.require(Self.isValid(instructions), field: "instructions",
                                    "not a seccomp BPF program Linux would accept")
    }
}

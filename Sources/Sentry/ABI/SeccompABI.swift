/// Linux's seccomp ABI, with Linux's names: a filter's return values
/// (uapi/linux/seccomp.h), SIGSYS's si_code (asm-generic/siginfo.h) and the
/// audit architecture a SIGSYS reports (uapi/linux/audit.h).
public enum LinuxSeccomp {
    // Filter return values: the action in the high 16 bits, data in the low ones.
    public static let SECCOMP_RET_KILL_PROCESS: UInt32 = 0x8000_0000
    public static let SECCOMP_RET_KILL_THREAD: UInt32 = 0x0000_0000
    public static let SECCOMP_RET_TRAP: UInt32 = 0x0003_0000
    public static let SECCOMP_RET_ERRNO: UInt32 = 0x0005_0000
    public static let SECCOMP_RET_USER_NOTIF: UInt32 = 0x7fc0_0000
    public static let SECCOMP_RET_TRACE: UInt32 = 0x7ff0_0000
    public static let SECCOMP_RET_LOG: UInt32 = 0x7ffc_0000
    public static let SECCOMP_RET_ALLOW: UInt32 = 0x7fff_0000
    public static let SECCOMP_RET_ACTION_FULL: UInt32 = 0xffff_0000
    public static let SECCOMP_RET_DATA: UInt32 = 0x0000_ffff
    /// The actions the Sentry carries out (Linux's but USER_NOTIF): what
    /// SECCOMP_GET_ACTION_AVAIL accepts and a filter may return.
    public static let supportedActions: Set<UInt32> = [
        SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP, SECCOMP_RET_ERRNO,
        SECCOMP_RET_TRACE, SECCOMP_RET_LOG, SECCOMP_RET_ALLOW,
    ]

    /// SIGSYS's si_code for a seccomp TRAP (and a KILL's core-dumping SIGSYS).
    public static let SYS_SECCOMP: Int32 = 1
    /// AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    public static let AUDIT_ARCH_X86_64: UInt32 = 0xc000_003e
    /// The largest errno a syscall returns (include/linux/err.h): an ERRNO's data is capped to it.
    public static let MAX_ERRNO: UInt32 = 4095
}

extension LinuxSeccomp {
    // seccomp(2) operations and flags.
    public static let SECCOMP_SET_MODE_STRICT: UInt32 = 0
    public static let SECCOMP_SET_MODE_FILTER: UInt32 = 1
    public static let SECCOMP_GET_ACTION_AVAIL: UInt32 = 2
    public static let SECCOMP_FILTER_FLAG_TSYNC: UInt32 = 1 << 0
    public static let SECCOMP_FILTER_FLAG_LOG: UInt32 = 1 << 1
    public static let SECCOMP_FILTER_FLAG_SPEC_ALLOW: UInt32 = 1 << 2
    /// prctl's seccomp modes (PR_GET_SECCOMP's answers).
    public static let SECCOMP_MODE_DISABLED: Int64 = 0
    public static let SECCOMP_MODE_FILTER: Int64 = 2
    /// sizeof(struct seccomp_data): nr, arch, instruction_pointer, args[6].
    public static let seccompDataSize: UInt32 = 64
    /// Instructions one filter may have (BPF_MAXINSNS), and all of a task's filters together (MAX_INSNS_PER_PATH).
    public static let BPF_MAXINSNS = 4096
    public static let MAX_INSNS_PER_PATH = 32768
    /// sizeof(struct sock_filter).
    public static let sockFilterSize = 8
}

/// Classic BPF's instruction classes and fields (uapi/linux/filter.h, bpf_common.h).
public enum LinuxBPF {
    public static func BPF_CLASS(_ code: UInt16) -> UInt16 { code & 0x07 }
    public static func BPF_SIZE(_ code: UInt16) -> UInt16 { code & 0x18 }
    public static func BPF_MODE(_ code: UInt16) -> UInt16 { code & 0xe0 }
    public static func BPF_OP(_ code: UInt16) -> UInt16 { code & 0xf0 }
    public static func BPF_SRC(_ code: UInt16) -> UInt16 { code & 0x08 }
    public static func BPF_RVAL(_ code: UInt16) -> UInt16 { code & 0x18 }
    public static func BPF_MISCOP(_ code: UInt16) -> UInt16 { code & 0xf8 }

    public static let BPF_LD: UInt16 = 0x00, BPF_LDX: UInt16 = 0x01, BPF_ST: UInt16 = 0x02, BPF_STX: UInt16 = 0x03
    public static let BPF_ALU: UInt16 = 0x04, BPF_JMP: UInt16 = 0x05, BPF_RET: UInt16 = 0x06, BPF_MISC: UInt16 = 0x07
    public static let BPF_W: UInt16 = 0x00
    public static let BPF_IMM: UInt16 = 0x00, BPF_ABS: UInt16 = 0x20, BPF_MEM: UInt16 = 0x60, BPF_LEN: UInt16 = 0x80
    public static let BPF_ADD: UInt16 = 0x00, BPF_SUB: UInt16 = 0x10, BPF_MUL: UInt16 = 0x20, BPF_DIV: UInt16 = 0x30
    public static let BPF_OR: UInt16 = 0x40, BPF_AND: UInt16 = 0x50, BPF_LSH: UInt16 = 0x60, BPF_RSH: UInt16 = 0x70
    public static let BPF_NEG: UInt16 = 0x80, BPF_MOD: UInt16 = 0x90, BPF_XOR: UInt16 = 0xa0
    public static let BPF_JA: UInt16 = 0x00, BPF_JEQ: UInt16 = 0x10, BPF_JGT: UInt16 = 0x20, BPF_JGE: UInt16 = 0x30
    public static let BPF_JSET: UInt16 = 0x40
    public static let BPF_K: UInt16 = 0x00, BPF_X: UInt16 = 0x08, BPF_A: UInt16 = 0x10
    public static let BPF_TAX: UInt16 = 0x00, BPF_TXA: UInt16 = 0x80
    /// Scratch memory words (BPF_MEMWORDS).
    public static let BPF_MEMWORDS: UInt32 = 16
}

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

    /// SIGSYS's si_code for a seccomp TRAP (and a KILL's core-dumping SIGSYS).
    public static let SYS_SECCOMP: Int32 = 1
    /// AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    public static let AUDIT_ARCH_X86_64: UInt32 = 0xc000_003e
    /// The largest errno a syscall returns (include/linux/err.h): an ERRNO's data is capped to it.
    public static let MAX_ERRNO: UInt32 = 4095
}

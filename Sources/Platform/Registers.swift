import CShim

/// The general registers of an x86_64 application thread, field for field
/// Linux's `user_regs_struct` (what PTRACE_GETREGS returns), including
/// `origRax` and the TLS bases. A plain value so the Sentry can keep it in
/// the Task and save it.
public struct Registers: Equatable, Hashable, Sendable {
    public var r15: UInt64 = 0
    public var r14: UInt64 = 0
    public var r13: UInt64 = 0
    public var r12: UInt64 = 0
    public var rbp: UInt64 = 0
    public var rbx: UInt64 = 0
    public var r11: UInt64 = 0
    public var r10: UInt64 = 0
    public var r9: UInt64 = 0
    public var r8: UInt64 = 0
    public var rax: UInt64 = 0
    public var rcx: UInt64 = 0
    public var rdx: UInt64 = 0
    public var rsi: UInt64 = 0
    public var rdi: UInt64 = 0
    /// The syscall number at a syscall stop (rax then holds -ENOSYS).
    public var origRax: UInt64 = 0
    public var rip: UInt64 = 0
    public var cs: UInt64 = 0
    public var eflags: UInt64 = 0
    public var rsp: UInt64 = 0
    public var ss: UInt64 = 0
    public var fsBase: UInt64 = 0
    public var gsBase: UInt64 = 0
    public var ds: UInt64 = 0
    public var es: UInt64 = 0
    public var fs: UInt64 = 0
    public var gs: UInt64 = 0

    public init() {}

    /// A fresh thread about to run at `rip` with stack `rsp`: 64-bit user
    /// code and stack selectors, interrupts enabled, everything else zero.
    public init(rip: UInt64, rsp: UInt64) {
        self.rip = rip
        self.rsp = rsp
        cs = Registers.userCodeSelector
        ss = Registers.userDataSelector
        eflags = 0x202
    }

    /// Linux's __USER_CS and __USER_DS on x86_64.
    public static let userCodeSelector: UInt64 = 0x33
    public static let userDataSelector: UInt64 = 0x2b

    /// The syscall number at a syscall stop.
    public var syscallNumber: Int { Int(truncatingIfNeeded: origRax) }

    /// The six syscall arguments in the x86_64 syscall ABI order.
    public var syscallArguments: [UInt64] { [rdi, rsi, rdx, r10, r8, r9] }

    /// Sets what the application sees as the syscall's result
    /// (a value, or -errno for an error).
    public mutating func setSyscallReturn(_ value: Int64) {
        rax = UInt64(bitPattern: value)
    }

    init(_ r: user_regs_struct) {
        r15 = UInt64(r.r15); r14 = UInt64(r.r14); r13 = UInt64(r.r13); r12 = UInt64(r.r12)
        rbp = UInt64(r.rbp); rbx = UInt64(r.rbx); r11 = UInt64(r.r11); r10 = UInt64(r.r10)
        r9 = UInt64(r.r9); r8 = UInt64(r.r8); rax = UInt64(r.rax); rcx = UInt64(r.rcx)
        rdx = UInt64(r.rdx); rsi = UInt64(r.rsi); rdi = UInt64(r.rdi); origRax = UInt64(r.orig_rax)
        rip = UInt64(r.rip); cs = UInt64(r.cs); eflags = UInt64(r.eflags); rsp = UInt64(r.rsp)
        ss = UInt64(r.ss); fsBase = UInt64(r.fs_base); gsBase = UInt64(r.gs_base)
        ds = UInt64(r.ds); es = UInt64(r.es); fs = UInt64(r.fs); gs = UInt64(r.gs)
    }

    var host: user_regs_struct {
        var r = user_regs_struct()
        r.r15 = numericCast(r15); r.r14 = numericCast(r14); r.r13 = numericCast(r13); r.r12 = numericCast(r12)
        r.rbp = numericCast(rbp); r.rbx = numericCast(rbx); r.r11 = numericCast(r11); r.r10 = numericCast(r10)
        r.r9 = numericCast(r9); r.r8 = numericCast(r8); r.rax = numericCast(rax); r.rcx = numericCast(rcx)
        r.rdx = numericCast(rdx); r.rsi = numericCast(rsi); r.rdi = numericCast(rdi); r.orig_rax = numericCast(origRax)
        r.rip = numericCast(rip); r.cs = numericCast(cs); r.eflags = numericCast(eflags); r.rsp = numericCast(rsp)
        r.ss = numericCast(ss); r.fs_base = numericCast(fsBase); r.gs_base = numericCast(gsBase)
        r.ds = numericCast(ds); r.es = numericCast(es); r.fs = numericCast(fs); r.gs = numericCast(gs)
        return r
    }
}

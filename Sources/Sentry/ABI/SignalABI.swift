/// Linux's x86_64 signal ABI, with Linux's names: sigaction flags
/// (asm/signal.h), si_code values (asm-generic/siginfo.h), the signal frame's
/// structs (asm/sigcontext.h, asm-generic/ucontext.h, arch/x86/include/asm/
/// sigframe.h) and the FP frame's magic words (asm/sigcontext.h, fpu/signal.c).
public enum LinuxSignal {
    // sa_flags.
    public static let SA_NOCLDSTOP: UInt64 = 0x0000_0001
    public static let SA_NOCLDWAIT: UInt64 = 0x0000_0002
    public static let SA_SIGINFO: UInt64 = 0x0000_0004
    public static let SA_RESTORER: UInt64 = 0x0400_0000
    public static let SA_ONSTACK: UInt64 = 0x0800_0000
    public static let SA_RESTART: UInt64 = 0x1000_0000
    public static let SA_NODEFER: UInt64 = 0x4000_0000
    public static let SA_RESETHAND: UInt64 = 0x8000_0000
    public static let SA_EXPOSE_TAGBITS: UInt64 = 0x0000_0800
    /// The flags rt_sigaction keeps; it clears the others, so a program can
    /// tell which flags this kernel knows (UAPI_SA_FLAGS).
    public static let UAPI_SA_FLAGS: UInt64 = SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_ONSTACK | SA_RESTART
        | SA_NODEFER | SA_RESETHAND | SA_EXPOSE_TAGBITS | SA_RESTORER

    // si_code: who sent the signal.
    public static let SI_USER: Int32 = 0
    public static let SI_KERNEL: Int32 = 0x80
    public static let SI_QUEUE: Int32 = -1
    public static let SI_TIMER: Int32 = -2
    public static let SI_TKILL: Int32 = -6
    public static let SI_SIGIO: Int32 = -5

    /// How many si_codes each signal's own set has (asm-generic/siginfo.h
    /// NSIG*): a code up to it is that signal's, past it a poll code or none.
    public static let NSIGILL: Int32 = 11
    public static let NSIGFPE: Int32 = 15
    public static let NSIGSEGV: Int32 = 10
    public static let NSIGBUS: Int32 = 5
    public static let NSIGTRAP: Int32 = 6
    public static let NSIGCHLD: Int32 = 6
    public static let NSIGPOLL: Int32 = 6
    public static let NSIGSYS: Int32 = 2

    // si_code of faults.
    public static let ILL_ILLOPC: Int32 = 1
    public static let ILL_ILLOPN: Int32 = 2
    public static let FPE_INTDIV: Int32 = 1
    public static let SEGV_MAPERR: Int32 = 1
    public static let SEGV_ACCERR: Int32 = 2
    public static let BUS_ADRALN: Int32 = 1
    public static let BUS_ADRERR: Int32 = 2
    public static let TRAP_BRKPT: Int32 = 1

    // rt_sigprocmask's how.
    public static let SIG_BLOCK: Int32 = 0
    public static let SIG_UNBLOCK: Int32 = 1
    public static let SIG_SETMASK: Int32 = 2

    // sigaltstack.
    public static let SS_ONSTACK: Int32 = 1
    public static let SS_DISABLE: Int32 = 2
    public static let SS_AUTODISARM = Int32(bitPattern: 0x8000_0000)
    /// The smallest alternate stack sigaltstack accepts (asm/signal.h MINSIGSTKSZ).
    public static let MINSIGSTKSZ: UInt64 = 2048

    /// The first real-time signal: lower numbers coalesce, higher ones queue.
    public static let SIGRTMIN: Int32 = 32
    /// The size of a sigset_t the kernel reads (_NSIG / 8).
    public static let sigsetSize: UInt64 = 8

    // ucontext uc_flags (asm/ucontext.h).
    public static let UC_FP_XSTATE: UInt64 = 0x1
    public static let UC_SIGCONTEXT_SS: UInt64 = 0x2
    public static let UC_STRICT_RESTORE_SS: UInt64 = 0x4

    /// fpx_sw_bytes.magic1 and the word after the XSAVE area (asm/sigcontext.h).
    public static let FP_XSTATE_MAGIC1: UInt32 = 0x4650_5853
    public static let FP_XSTATE_MAGIC2: UInt32 = 0x4650_5845
    public static let FP_XSTATE_MAGIC2_SIZE: UInt64 = 4
    /// The XSAVE area's alignment in a frame.
    public static let xsaveAlignment: UInt64 = 64
    /// The legacy FXSAVE region and the XSAVE header that follows it.
    public static let fxsaveSize = 512
    public static let xsaveHeaderSize = 64
    /// Offset of fpx_sw_bytes in the FXSAVE region (its sw_reserved words).
    public static let fxSoftwareBytesOffset = 464
    /// XFEATURE_MASK_FPSSE: the x87 and SSE components.
    public static let XFEATURE_MASK_FPSSE: UInt64 = 0x3

    /// x86 trap numbers and page-fault error bits (asm/trapnr.h,
    /// asm/trap_pf.h) a sigcontext reports in trapno and err.
    public static let X86_TRAP_GP: UInt64 = 13
    public static let X86_TRAP_PF: UInt64 = 14
    public static let X86_PF_PROT: UInt64 = 1
    public static let X86_PF_USER: UInt64 = 4

    /// The x86-64 ABI's red zone below rsp, which a frame must not overwrite.
    public static let redZone: UInt64 = 128
    /// The eflags a handler starts without (trap, direction, resume).
    public static let X86_EFLAGS_TF: UInt64 = 0x100
    public static let X86_EFLAGS_DF: UInt64 = 0x400
    public static let X86_EFLAGS_RF: UInt64 = 0x1_0000
    /// The eflags bits rt_sigreturn takes from the frame (signal.c FIX_EFLAGS:
    /// AC, OF, DF, TF, SF, ZF, AF, PF, CF, RF).
    public static let FIX_EFLAGS: UInt64 = 0x4_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x1_0000
}

/// struct sigcontext_64.
struct RawSigcontext: BitwiseCopyable {
    var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    var di: UInt64 = 0, si: UInt64 = 0, bp: UInt64 = 0, bx: UInt64 = 0
    var dx: UInt64 = 0, ax: UInt64 = 0, cx: UInt64 = 0, sp: UInt64 = 0
    var ip: UInt64 = 0, flags: UInt64 = 0
    var cs: UInt16 = 0, gs: UInt16 = 0, fs: UInt16 = 0, ss: UInt16 = 0
    var err: UInt64 = 0, trapno: UInt64 = 0, oldmask: UInt64 = 0, cr2: UInt64 = 0
    /// Address of the FP state in the frame (0: none).
    var fpstate: UInt64 = 0
    var reserved1: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}

/// struct ucontext as the kernel writes it.
struct RawUcontext: BitwiseCopyable {
    var flags: UInt64 = 0
    var link: UInt64 = 0
    var stack = Signals.RawStack(base: 0, flags: 0, size: 0)
    var mcontext = RawSigcontext()
    var sigmask: UInt64 = 0
}

/// The kernel's siginfo_t: 128 bytes, the union's meaning set by signo and code.
struct RawSignalInfo: BitwiseCopyable {
    var signo: Int32 = 0
    var errno: Int32 = 0
    var code: Int32 = 0
    var padding: Int32 = 0
    var fields: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                 UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// struct rt_sigframe (64-bit): the return address, the ucontext, the
/// siginfo; the FP state sits above it, 64-byte aligned.
struct RawSignalFrame: BitwiseCopyable {
    var pretcode: UInt64 = 0
    var uc = RawUcontext()
    var info = RawSignalInfo()
}

/// struct _fpx_sw_bytes, in the FXSAVE region's software-reserved words.
struct RawFPXSoftwareBytes: BitwiseCopyable {
    var magic1: UInt32 = 0
    var extendedSize: UInt32 = 0
    var xfeatures: UInt64 = 0
    var xstateSize: UInt32 = 0
    var padding: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0, 0, 0)
}

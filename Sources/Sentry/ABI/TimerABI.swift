/// Linux's POSIX timer and signalfd ABI, with Linux's names: sigevent's
/// notify kinds (asm-generic/siginfo.h), timer_settime's flag
/// (uapi/linux/time.h), struct sigevent and struct itimerspec as x86_64
/// lays them out, and signalfd's flags and record (uapi/linux/signalfd.h).
enum TimerABI {
    static let SIGEV_SIGNAL: Int32 = 0
    static let SIGEV_NONE: Int32 = 1
    static let SIGEV_THREAD: Int32 = 2
    static let SIGEV_THREAD_ID: Int32 = 4
    static let TIMER_ABSTIME: Int32 = 1
    /// The highest signal number a sigevent may name (SIGRTMAX).
    static let SIGRTMAX: Int32 = 64
    /// Timer IDs are ints; the next one wraps to 0 past this (posix_timer_add).
    static let maximumTimerID: Int32 = .max

    // A CPU clock of a process or thread as a negative clockid
    // (include/linux/posix-timers_types.h): ~pid << 3, the per-thread
    // bit, and which time it counts. glibc's timer_create names its own
    // CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID this way, pid 0.
    static let CPUCLOCK_PROF: Int32 = 0
    static let CPUCLOCK_VIRT: Int32 = 1
    static let CPUCLOCK_SCHED: Int32 = 2
    static let CPUCLOCK_MAX: Int32 = 3
    static let CPUCLOCK_CLOCK_MASK: Int32 = 3
    static let CPUCLOCK_PERTHREAD_MASK: Int32 = 4
    static let CPUCLOCK_PID_SHIFT: Int32 = 3

    // timerfd's flags (fs/timerfd.c, uapi/linux/timerfd.h).
    static let TFD_CLOEXEC: UInt32 = 0o2000000
    static let TFD_NONBLOCK: UInt32 = 0o4000
    static let TFD_TIMER_ABSTIME: Int32 = 1
    static let TFD_TIMER_CANCEL_ON_SET: Int32 = 2
    /// The capability the alarm clocks need (uapi/linux/capability.h).
    static let CAP_WAKE_ALARM = 35

    // signalfd4's flags (O_CLOEXEC and O_NONBLOCK).
    static let SFD_CLOEXEC: UInt32 = 0o2000000
    static let SFD_NONBLOCK: UInt32 = 0o4000
}

/// struct sigevent (64 bytes): the value, the signal, how to notify, and
/// the union whose first int is sigev_notify_thread_id.
struct RawSignalEvent: BitwiseCopyable {
    var value: UInt64 = 0
    var signal: Int32 = 0
    var notify: Int32 = 0
    var threadID: Int32 = 0
    var padding: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// struct signalfd_siginfo: 128 bytes, each siginfo field at a fixed place
/// whatever the signal (signalfd_copyinfo fills those its si_code uses).
struct RawSignalFDInfo: BitwiseCopyable {
    var signo: UInt32 = 0
    var errno: Int32 = 0
    var code: Int32 = 0
    var pid: UInt32 = 0
    var uid: UInt32 = 0
    var fd: Int32 = 0
    var tid: UInt32 = 0
    var band: UInt32 = 0
    var overrun: UInt32 = 0
    var trapno: UInt32 = 0
    var status: Int32 = 0
    var int: Int32 = 0
    var ptr: UInt64 = 0
    var utime: UInt64 = 0
    var stime: UInt64 = 0
    var addr: UInt64 = 0
    var addrLSB: UInt16 = 0
    var pad2: UInt16 = 0
    var syscall: Int32 = 0
    var callAddr: UInt64 = 0
    var arch: UInt32 = 0
    var pad: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0, 0, 0)
}

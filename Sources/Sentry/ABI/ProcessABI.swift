/// Linux's process-creation and wait ABI, with Linux's names: clone flags
/// and clone3's struct (uapi/linux/sched.h), wait options and idtypes
/// (uapi/linux/wait.h), SIGCHLD's si_code values (asm-generic/siginfo.h).
public enum LinuxProcess {
    // clone flags.
    public static let CSIGNAL: UInt64 = 0x0000_00ff
    public static let CLONE_VM: UInt64 = 0x0000_0100
    public static let CLONE_FS: UInt64 = 0x0000_0200
    public static let CLONE_FILES: UInt64 = 0x0000_0400
    public static let CLONE_SIGHAND: UInt64 = 0x0000_0800
    public static let CLONE_PIDFD: UInt64 = 0x0000_1000
    public static let CLONE_PTRACE: UInt64 = 0x0000_2000
    public static let CLONE_VFORK: UInt64 = 0x0000_4000
    public static let CLONE_PARENT: UInt64 = 0x0000_8000
    public static let CLONE_THREAD: UInt64 = 0x0001_0000
    public static let CLONE_NEWNS: UInt64 = 0x0002_0000
    public static let CLONE_SYSVSEM: UInt64 = 0x0004_0000
    public static let CLONE_SETTLS: UInt64 = 0x0008_0000
    public static let CLONE_PARENT_SETTID: UInt64 = 0x0010_0000
    public static let CLONE_CHILD_CLEARTID: UInt64 = 0x0020_0000
    public static let CLONE_DETACHED: UInt64 = 0x0040_0000
    public static let CLONE_UNTRACED: UInt64 = 0x0080_0000
    public static let CLONE_CHILD_SETTID: UInt64 = 0x0100_0000
    public static let CLONE_NEWCGROUP: UInt64 = 0x0200_0000
    public static let CLONE_NEWUTS: UInt64 = 0x0400_0000
    public static let CLONE_NEWIPC: UInt64 = 0x0800_0000
    public static let CLONE_NEWUSER: UInt64 = 0x1000_0000
    public static let CLONE_NEWPID: UInt64 = 0x2000_0000
    public static let CLONE_NEWNET: UInt64 = 0x4000_0000
    public static let CLONE_IO: UInt64 = 0x8000_0000
    public static let CLONE_CLEAR_SIGHAND: UInt64 = 0x1_0000_0000
    public static let CLONE_INTO_CGROUP: UInt64 = 0x2_0000_0000
    public static let CLONE_NEWTIME: UInt64 = 0x0000_0080
    /// The namespaces a clone can create.
    public static let namespaceFlags: UInt64 = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC
        | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
    /// Flags without an effect here (System V semaphores, I/O contexts,
    /// tracing requests, the obsolete CLONE_DETACHED).
    public static let ignoredFlags: UInt64 = CLONE_SYSVSEM | CLONE_IO | CLONE_PTRACE | CLONE_UNTRACED | CLONE_DETACHED

    /// clone3's struct clone_args sizes: the first version and the current one.
    public static let CLONE_ARGS_SIZE_VER0 = 64
    public static let CLONE_ARGS_SIZE_VER2 = 88
    /// The page size: clone3 refuses a larger struct with E2BIG.
    public static let cloneArgsMaxSize = 4096

    // wait options.
    public static let WNOHANG: Int32 = 0x0000_0001
    public static let WUNTRACED: Int32 = 0x0000_0002
    public static let WSTOPPED: Int32 = WUNTRACED
    public static let WEXITED: Int32 = 0x0000_0004
    public static let WCONTINUED: Int32 = 0x0000_0008
    public static let WNOWAIT: Int32 = 0x0100_0000
    public static let __WNOTHREAD: Int32 = 0x2000_0000
    public static let __WALL: Int32 = 0x4000_0000
    public static let __WCLONE = Int32(bitPattern: 0x8000_0000)

    // waitid's idtype.
    public static let P_ALL: Int32 = 0
    public static let P_PID: Int32 = 1
    public static let P_PGID: Int32 = 2
    public static let P_PIDFD: Int32 = 3

    // pidfd_open's flags (uapi/linux/pidfd.h).
    public static let PIDFD_NONBLOCK: UInt32 = LinuxFile.nonBlocking
    // pidfd_send_signal's flags: which of the process's scopes gets the signal.
    public static let PIDFD_SIGNAL_THREAD: UInt32 = 1 << 0
    public static let PIDFD_SIGNAL_THREAD_GROUP: UInt32 = 1 << 1
    public static let PIDFD_SIGNAL_PROCESS_GROUP: UInt32 = 1 << 2
    /// CAP_SYS_PTRACE: pidfd_getfd of any process (ptrace_may_access).
    public static let CAP_SYS_PTRACE = 19
    /// CAP_SYS_ADMIN: a seccomp filter without no_new_privs, the trusted xattr
    /// namespace, TIOCSTI and SCM_CREDENTIALS of another process.
    public static let CAP_SYS_ADMIN = 21

    // SIGCHLD's si_code.
    public static let CLD_EXITED: Int32 = 1
    public static let CLD_KILLED: Int32 = 2
    public static let CLD_DUMPED: Int32 = 3
    public static let CLD_STOPPED: Int32 = 5
    public static let CLD_CONTINUED: Int32 = 6
}

/// clone3's argument (struct clone_args), VER2 layout.
struct RawCloneArgs: BitwiseCopyable {
    var flags: UInt64 = 0
    var pidfd: UInt64 = 0
    var childTID: UInt64 = 0
    var parentTID: UInt64 = 0
    var exitSignal: UInt64 = 0
    var stack: UInt64 = 0
    var stackSize: UInt64 = 0
    var tls: UInt64 = 0
    var setTID: UInt64 = 0
    var setTIDSize: UInt64 = 0
    var cgroup: UInt64 = 0
}

/// The ptrace access rule's numbers (linux/capability.h, linux/sched/coredump.h).
enum LinuxPtraceAccess {
    static let CAP_SYS_PTRACE = 19
    /// SUID_DUMP_USER: the dumpable value that lets the owner trace the process.
    static let SUID_DUMP_USER: Int32 = 1
}

/// Scheduling policies and I/O priority classes (linux/sched.h, linux/ioprio.h).
enum LinuxScheduling {
    static let SCHED_OTHER: Int32 = 0, SCHED_FIFO: Int32 = 1, SCHED_RR: Int32 = 2, SCHED_BATCH: Int32 = 3
    static let SCHED_IDLE: Int32 = 5, SCHED_DEADLINE: Int32 = 6
    static let SCHED_RESET_ON_FORK: Int32 = 0x4000_0000
    /// MAX_RT_PRIO - 1.
    static let maxRealtimePriority: Int32 = 99
    /// RR_TIMESLICE: a SCHED_RR task's time slice.
    static let roundRobinSliceNanoseconds: Int64 = 100_000_000

    static func isValid(_ policy: Int32) -> Bool {
        [SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE].contains(policy)
    }

    static func isRealtime(_ policy: Int32) -> Bool { policy == SCHED_FIFO || policy == SCHED_RR }

    static let PRIO_PROCESS: Int32 = 0, PRIO_PGRP: Int32 = 1, PRIO_USER: Int32 = 2

    static let IOPRIO_WHO_PROCESS: Int32 = 1, IOPRIO_WHO_PGRP: Int32 = 2, IOPRIO_WHO_USER: Int32 = 3
    static let IOPRIO_CLASS_NONE: Int32 = 0, IOPRIO_CLASS_RT: Int32 = 1, IOPRIO_CLASS_BE: Int32 = 2
    static let IOPRIO_CLASS_IDLE: Int32 = 3
    static let IOPRIO_CLASS_SHIFT: Int32 = 13
    /// IOPRIO_NR_LEVELS: the levels of the RT and BE classes.
    static let ioPriorityLevels: Int32 = 8
}

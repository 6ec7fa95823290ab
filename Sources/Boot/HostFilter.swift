import CSeccomp
import CShim
import Glibc

/// The sandbox process's own host seccomp filter: an allow-list of the host
/// syscalls the Sentry makes, with their arguments checked where a wider use
/// would reach beyond the sandbox, built with libseccomp and installed on
/// every thread (TSYNC) once the container is booted or restored.
///
/// `rules` is the one place the list lives. The stubs are forked from the
/// Sentry after it is installed and inherit it beneath their own much smaller
/// filter (`StubFilter`), so the calls a stub makes on its way to the stub page
/// and the calls the Sentry injects into it are here as well. The
/// application's own syscalls never meet either filter: PTRACE_SYSEMU stops
/// them before seccomp runs.
///
/// A call outside the list kills the whole sandbox process (SIGSYS, no core:
/// the fatal report's RLIMIT_CORE). Under `--debug` it is trapped instead: a
/// SIGSYS handler logs the call's name and arguments and the call fails with
/// ENOSYS, so a missed syscall shows in the log rather than as a dead container.
public enum HostFilter {
    /// What a call outside the list does.
    public enum Violation: Sendable {
        /// SCMP_ACT_KILL_PROCESS: the sandbox dies of SIGSYS.
        case kill
        /// SCMP_ACT_TRAP with a SIGSYS handler that logs the name; the call returns ENOSYS.
        case log
    }

    /// One allowed shape of a call: every comparison must hold (libseccomp
    /// ANDs them); several rules for one syscall are alternatives.
    struct Rule {
        var name: String
        var comparisons: [scmp_arg_cmp] = []
        /// SCMP_ACT_ALLOW, or an errno the call returns without running.
        var action: UInt32 = SCMP_ACT_ALLOW
    }

    /// Installs the filter on every thread of the calling process. Nothing
    /// outside `rules` is allowed: no execve, mount, unshare, setns, host
    /// network, process_vm_* or kcmp.
    public static func install(violation: Violation) throws(HostFilterError) {
        let defaultAction = violation == .kill ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_TRAP
        guard let context = seccomp_init(defaultAction) else { throw HostFilterError("seccomp_init failed") }
        defer { seccomp_release(context) }
        // Every thread: the Sentry's task, timer and control threads exist by now.
        var result = seccomp_attr_set(context, SCMP_FLTATR_CTL_TSYNC, 1)
        if result < 0 { throw HostFilterError("TSYNC", errno: -result) }
        // A binary search over syscall numbers rather than a linear walk of some 180 rules:
        // the filter runs on every host call, the platform's ptrace and wait4 included.
        result = seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        if result < 0 { throw HostFilterError("binary tree optimisation", errno: -result) }
        for rule in rules {
            let number = seccomp_syscall_resolve_name(rule.name)
            guard number != __NR_SCMP_ERROR else { throw HostFilterError("unknown syscall name \(rule.name)") }
            result = rule.comparisons.withUnsafeBufferPointer { buffer in
                seccomp_rule_add_exact_array(context, rule.action, number, UInt32(buffer.count), buffer.baseAddress)
            }
            if result < 0 { throw HostFilterError("rule for \(rule.name)", errno: -result) }
        }
        if violation == .log {
            result = cshim_install_forbidden_syscall_report(names.baseAddress, UInt(names.count))
            if result < 0 { throw HostFilterError("SIGSYS handler", errno: -result) }
        }
        result = seccomp_load(context)
        if result < 0 { throw HostFilterError("seccomp_load", errno: -result) }
    }

    /// Syscall names by number for the SIGSYS handler, made once and kept for
    /// the life of the process (the handler may only read).
    nonisolated(unsafe) private static let names: UnsafeMutableBufferPointer<UnsafePointer<CChar>?> = {
        let count = 512  // above every x86_64 syscall number (Linux 6.x ends in the 460s)
        let table = UnsafeMutableBufferPointer<UnsafePointer<CChar>?>.allocate(capacity: count)
        for number in 0..<count {
            table[number] = seccomp_syscall_resolve_num_arch(UInt32(SCMP_ARCH_NATIVE), Int32(number)).map { UnsafePointer($0) }
        }
        return table
    }()

    // MARK: - The list

    private static func allow(_ names: String...) -> [Rule] { names.map { Rule(name: $0) } }

    private static func equal(_ argument: UInt32, _ value: UInt64) -> scmp_arg_cmp {
        scmp_arg_cmp(arg: argument, op: SCMP_CMP_EQ, datum_a: value, datum_b: 0)
    }

    /// `argument & mask == value`.
    private static func masked(_ argument: UInt32, _ mask: UInt64, _ value: UInt64) -> scmp_arg_cmp {
        scmp_arg_cmp(arg: argument, op: SCMP_CMP_MASKED_EQ, datum_a: mask, datum_b: value)
    }

    /// One rule per value `argument` may take.
    private static func oneOf(_ name: String, argument: UInt32, _ values: [UInt64]) -> [Rule] {
        values.map { Rule(name: name, comparisons: [equal(argument, $0)]) }
    }

    /// How many rules the list has, for the log.
    public static var ruleCount: Int { rules.count }

    static let rules: [Rule] =
        files + memory + processes + signals + time + sockets + tracing

    /// Files: hostfs, the container's stdio, the image a checkpoint writes and
    /// a restore reads, the state directory. Every open is close-on-exec
    /// (Host.openAt and Host.openBeneath add it), so one without O_CLOEXEC is
    /// not ours.
    private static let files: [Rule] =
        allow("read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2",
              "close", "close_range", "fstat", "newfstatat", "statx", "lseek", "getdents64", "fcntl",
              "dup", "dup2", "dup3", "pipe2", "openat2", "mkdirat", "unlinkat", "renameat", "renameat2",
              "symlinkat", "linkat", "readlinkat", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "utimensat",
              "mknodat", "ftruncate", "fallocate", "fsync", "fdatasync", "sync_file_range", "statfs", "fstatfs",
              "faccessat", "faccessat2", "flock", "getcwd", "chdir", "fchdir", "copy_file_range", "sendfile",
              "splice", "memfd_create", "umask", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
              "poll", "ppoll", "pselect6", "eventfd2",
              // glibc's rename, unlink, mkdir... (the state directory's files) use the old path calls.
              "rename", "unlink", "mkdir", "rmdir", "symlink", "link", "readlink", "chmod", "chown", "lchown",
              "access",
              // The application's sync(2) and syncfs(2) sync the host's (Host.syncAll).
              "sync", "syncfs")
        + [Rule(name: "openat", comparisons: [masked(2, UInt64(O_CLOEXEC), UInt64(O_CLOEXEC))])]
        // The terminal requests the Sentry passes to a host terminal, and FIONREAD of host stdio.
        + oneOf("ioctl", argument: 1, [TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ, FIONREAD].map(UInt64.init))

    /// Memory: the Swift heap, the MemoryFile's mappings, and (in stubs) the
    /// application's mappings the Sentry injects. Executable mappings only of
    /// the MemoryFile at the stub's fixed FD, as a stub maps application code;
    /// mprotect stays unchecked because the stubs inject the application's own
    /// mprotect, PROT_EXEC included, and inherit this filter.
    private static let memory: [Rule] =
        allow("munmap", "mprotect", "madvise", "mremap", "brk", "msync", "mincore")
        + [Rule(name: "mmap", comparisons: [masked(2, UInt64(PROT_EXEC), 0)]),
           Rule(name: "mmap", comparisons: [equal(3, UInt64(MAP_SHARED | MAP_FIXED)), equal(4, UInt64(CSHIM_STUB_MEMFD))])]

    /// Threads and the stubs: clone never makes a namespace (clone3's
    /// arguments are in memory a filter cannot read, so glibc is told it
    /// is missing and falls back to clone), prctl only what the Sentry
    /// and a new stub set on themselves, seccomp only to add a filter.
    private static let processes: [Rule] =
        allow("getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
              "getgroups", "set_robust_list", "set_tid_address", "rseq", "exit", "exit_group", "wait4", "waitid",
              "sched_yield", "sched_getaffinity", "sched_setaffinity", "getcpu", "getrandom", "uname", "sysinfo",
              "getrlimit", "getrusage", "times", "setsid", "getpgid", "getsid", "futex", "pidfd_open",
              "pidfd_send_signal", "arch_prctl")
        + [Rule(name: "clone", comparisons: [masked(0, namespaceFlags, 0)]),
           Rule(name: "clone3", action: cseccomp_act_errno(UInt16(ENOSYS))),
           Rule(name: "prlimit64", comparisons: [equal(0, 0)]),
           // A restore's background page loader lowers its own thread's priority.
           Rule(name: "setpriority", comparisons: [equal(0, UInt64(PRIO_PROCESS.rawValue))]),
           // A stub killed in the background tears down at the lowest priority.
           Rule(name: "sched_setscheduler", comparisons: [equal(1, UInt64(SCHED_IDLE))]),
           Rule(name: "seccomp", comparisons: [equal(0, UInt64(SECCOMP_SET_MODE_FILTER))]),
           // The application's membarrier: the stub threads are another host process.
           Rule(name: "membarrier", comparisons: [equal(0, UInt64(MEMBARRIER_CMD_GLOBAL.rawValue))])]
        + oneOf("prctl", argument: 0, [PR_SET_NAME, PR_GET_NAME, PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_GET_DUMPABLE,
                                      PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_CAPBSET_READ].map { UInt64($0) })

    /// CLONE_NEW*: a namespace is made once, by Confinement, before the filter.
    private static let namespaceFlags = UInt64(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC
                                               | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

    /// restart_syscall is how the host kernel resumes a Sentry thread's timed
    /// futex wait or sleep that a signal stopped (a save/restore cycle's stop).
    private static let signals: [Rule] =
        allow("rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigtimedwait", "tgkill", "tkill",
              "kill", "signalfd4", "restart_syscall")

    private static let time: [Rule] =
        allow("nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
              "timerfd_create", "timerfd_settime", "timerfd_gettime")

    /// Unix sockets only: the control socket and FD passing; the Sentry makes
    /// no host network connection.
    private static let sockets: [Rule] =
        [Rule(name: "socket", comparisons: [equal(0, UInt64(AF_UNIX))]),
         Rule(name: "socketpair", comparisons: [equal(0, UInt64(AF_UNIX))])]
        + allow("bind", "listen", "accept", "accept4", "connect", "sendmsg", "recvmsg", "sendto", "recvfrom",
                "getsockopt", "setsockopt", "shutdown", "getsockname", "getpeername")

    /// The ptrace requests of the platform (Sources/CShim/include/ptrace_stub.h),
    /// all on the Sentry's own stubs: no PEEK/POKE of memory (the Sentry
    /// reaches application memory through the MemoryFile); POKEUSER writes
    /// one register (a syscall's result in rax).
    private static let tracing: [Rule] =
        oneOf("ptrace", argument: 0, [PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_GETREGS,
                                      PTRACE_SETREGS, PTRACE_POKEUSER, PTRACE_SETFPREGS, PTRACE_GETREGSET, PTRACE_SETREGSET, PTRACE_SYSEMU,
                                      PTRACE_CONT, PTRACE_GETSIGINFO, PTRACE_GETEVENTMSG, PTRACE_DETACH, PTRACE_KILL]
                .map { UInt64($0.rawValue) })
}

/// The filter could not be built or installed.
public struct HostFilterError: Error, CustomStringConvertible {
    public let description: String

    init(_ what: String, errno: Int32? = nil) {
        description = "host seccomp filter: \(what)" + (errno.map { ": \(String(cString: strerror($0)))" } ?? "")
    }
}

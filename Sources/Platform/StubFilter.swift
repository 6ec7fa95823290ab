import CSeccomp
import CShim
import Glibc

/// The seccomp allow-list every stub installs before it runs its first
/// instruction on the stub page, built with libseccomp once per process.
///
/// Only calls that really run in a stub reach it: the stub code's own
/// (munmap, getpid, kill(self, SIGSTOP), exit_group on failure) and the
/// Sentry's injected ones (mmap of the MemoryFile, munmap, mprotect, one
/// at a time or several from the batch site, clone of a stub thread, exit
/// of one). The application's syscalls are stopped and skipped by
/// PTRACE_SYSEMU before seccomp runs, so they never meet the filter (gVisor's
/// ptrace platform relies on the same ordering). The C side puts a check
/// before this program that the call comes from the stub page; anything else,
/// here or there, kills the stub with SIGSYS.
enum StubFilter {
    /// The classic BPF program, or why it could not be built.
    static let program: Result<[sock_filter], PlatformError> = build()

    /// One allowed call and the argument values it must have.
    private struct Rule {
        var number: Int
        var equal: [(argument: UInt32, value: UInt64)] = []
    }

    private static let rules: [Rule] = [
        Rule(number: Int(SYS_getpid)),
        Rule(number: Int(SYS_kill), equal: [(1, UInt64(SIGSTOP))]),
        Rule(number: Int(SYS_mmap), equal: [(3, UInt64(MAP_SHARED | MAP_FIXED)), (4, UInt64(CSHIM_STUB_MEMFD))]),
        Rule(number: Int(SYS_munmap)),
        Rule(number: Int(SYS_mprotect)),
        Rule(number: Int(SYS_exit_group)),
        // Stub threads: made on the clone site, parked in pause() until
        // seized, ended with exit (AddressSpace's owner and Context).
        Rule(number: Int(SYS_clone), equal: [(0, cshim_stub_thread_clone_flags())]),
        Rule(number: Int(SYS_pause)),
        Rule(number: Int(SYS_exit)),
    ]

    private static func build() -> Result<[sock_filter], PlatformError> {
        guard let context = seccomp_init(SCMP_ACT_KILL_PROCESS) else {
            return .failure(PlatformError(.createStub, errno: ENOMEM, detail: "seccomp_init"))
        }
        defer { seccomp_release(context) }
        for rule in rules {
            let comparisons = rule.equal.map { scmp_arg_cmp(arg: $0.argument, op: SCMP_CMP_EQ, datum_a: $0.value, datum_b: 0) }
            let added = comparisons.withUnsafeBufferPointer { buffer in
                seccomp_rule_add_array(context, SCMP_ACT_ALLOW, Int32(rule.number), UInt32(buffer.count), buffer.baseAddress)
            }
            if added < 0 {
                return .failure(PlatformError(.createStub, errno: -added, detail: "seccomp_rule_add_array for syscall \(rule.number)"))
            }
        }
        return export(context)
    }

    /// libseccomp 2.5 exports only to an FD: through a memfd, read back.
    private static func export(_ context: scmp_filter_ctx) -> Result<[sock_filter], PlatformError> {
        let fd = cshim_memfd_create("stub-filter", CSHIM_MFD_CLOEXEC)
        if fd < 0 { return .failure(PlatformError(.createStub, errno: -fd, detail: "memfd for the stub filter")) }
        defer { close(fd) }
        let exported = seccomp_export_bpf(context, fd)
        if exported < 0 {
            return .failure(PlatformError(.createStub, errno: -exported, detail: "seccomp_export_bpf"))
        }
        var bytes = [UInt8](repeating: 0, count: Int(CSHIM_STUB_FILTER_MAX) * MemoryLayout<sock_filter>.stride + 1)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 { return .failure(PlatformError(.createStub, errno: errno, detail: "reading the stub filter")) }
        bytes.removeSubrange(count...)
        let size = MemoryLayout<sock_filter>.stride
        guard !bytes.isEmpty, bytes.count % size == 0, bytes.count / size <= Int(CSHIM_STUB_FILTER_MAX) else {
            return .failure(PlatformError(.createStub, errno: EPROTO, detail: "stub filter of \(bytes.count) bytes"))
        }
        let program = bytes.withUnsafeBytes { raw in
            (0..<bytes.count / size).map { raw.loadUnaligned(fromByteOffset: $0 * size, as: sock_filter.self) }
        }
        return .success(program)
    }
}

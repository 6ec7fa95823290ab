/// Enforcing a task's seccomp filter on its syscalls, before dispatch, with
/// the effects Linux's __seccomp_filter gives each action.
extension Task {
    /// What the filter makes of syscall `number`: nil runs it; otherwise the
    /// value for rax, the syscall not run (and a signal or an exit pending).
    func seccompVerdict(_ number: Int, _ arguments: SyscallArguments, filter: SeccompFilter,
                        kernel: Kernel) -> Int64? {
        let action = filter.action(for: number, arguments)
        switch action.action {
        case LinuxSeccomp.SECCOMP_RET_ALLOW:
            return nil
        case LinuxSeccomp.SECCOMP_RET_LOG:
            kernel.logger.info("seccomp: process \(processID) (\(name)) allowed \(SyscallTable.name(of: number)) (\(number)) by a LOG rule")
            return nil
        case LinuxSeccomp.SECCOMP_RET_ERRNO:
            return -Int64(min(action.data, LinuxSeccomp.MAX_ERRNO))
        case LinuxSeccomp.SECCOMP_RET_TRACE:
            // No ptrace tracer in the sandbox: seccomp(2) fails the syscall with ENOSYS.
            return SyscallError.enosys.returnValue
        case LinuxSeccomp.SECCOMP_RET_TRAP:
            // syscall_rollback: rax holds the syscall number again for the handler.
            forceSignal(seccompSignalInfo(number, data: action.data))
            return Int64(bitPattern: registers.origRax)
        default:
            kernel.logger.info("seccomp: process \(processID) (\(name)) killed by SIGSYS on \(SyscallTable.name(of: number)) (\(number))")
            if action.action == LinuxSeccomp.SECCOMP_RET_KILL_THREAD, let group = threadGroup, group.members.count > 1 {
                // do_exit(SIGSYS): this thread only; the others run on.
                exitCode = Signal.badSystemCall.rawValue
            } else {
                // The last thread, or KILL_PROCESS: the process dies of SIGSYS (core dumped where RLIMIT_CORE allows).
                threadGroup?.beginExit(killedBy: .badSystemCall)
            }
            return Int64(bitPattern: registers.origRax)
        }
    }

    /// force_sig_seccomp's siginfo: si_errno the filter's data, si_call_addr
    /// the address after the syscall instruction, si_syscall and si_arch.
    func seccompSignalInfo(_ number: Int, data: UInt32) -> SignalInfo {
        var info = SignalInfo(signal: .badSystemCall, code: LinuxSeccomp.SYS_SECCOMP, address: registers.rip)
        info.errno = Int32(truncatingIfNeeded: data)
        info.fields[1] = UInt64(UInt32(truncatingIfNeeded: number)) | UInt64(LinuxSeccomp.AUDIT_ARCH_X86_64) << 32
        return info
    }
}

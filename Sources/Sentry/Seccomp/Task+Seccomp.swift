/// Enforcing a task's seccomp filters on its syscalls, before dispatch, with
/// the effects Linux's __seccomp_filter gives each action. A task has the
/// OCI profile's filter (the runtime installed it first) and the BPF
/// programs it installed itself; all are one filter stack, evaluated as Linux
/// evaluates its stack.
extension Task {
    /// Whether any filter applies.
    var isSeccompFiltered: Bool { seccomp != nil || !seccompPrograms.isEmpty }

    /// The filters' verdict (seccomp_run_filters): every filter runs, the
    /// newest first, and the action of highest precedence wins (the lowest
    /// as a signed number: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF,
    /// TRACE, LOG, ALLOW); on a tie, the newer filter's data.
    func seccompAction(_ number: Int, _ arguments: SyscallArguments) -> UInt32 {
        var result = LinuxSeccomp.SECCOMP_RET_ALLOW
        func consider(_ action: UInt32) {
            let full = LinuxSeccomp.SECCOMP_RET_ACTION_FULL
            if Int32(bitPattern: action & full) < Int32(bitPattern: result & full) { result = action }
        }
        for program in seccompPrograms.reversed() {
            consider(program.run(number: number, arguments: arguments, instructionPointer: registers.rip))
        }
        if let seccomp { consider(seccomp.action(for: number, arguments).rawValue) }
        return result
    }

    /// What the filters make of syscall `number`: nil runs it; otherwise the
    /// value for rax, the syscall not run (and a signal or an exit pending).
    func seccompVerdict(_ number: Int, _ arguments: SyscallArguments, kernel: Kernel) -> Int64? {
        let result = seccompAction(number, arguments)
        let data = result & LinuxSeccomp.SECCOMP_RET_DATA
        switch result & LinuxSeccomp.SECCOMP_RET_ACTION_FULL {
        case LinuxSeccomp.SECCOMP_RET_ALLOW:
            return nil
        case LinuxSeccomp.SECCOMP_RET_LOG:
            let (allowed, suppressed) = kernel.seccompLogLimit.admit()
            guard allowed else { return nil }
            let earlier = suppressed > 0 ? " (\(suppressed) such lines left out before it)" : ""
            kernel.logger.info("seccomp: process \(processID) (\(name)) allowed \(SyscallTable.name(of: number)) (\(number)) by a LOG rule\(earlier)")
            return nil
        case LinuxSeccomp.SECCOMP_RET_ERRNO:
            return -Int64(min(data, LinuxSeccomp.MAX_ERRNO))
        case LinuxSeccomp.SECCOMP_RET_TRACE, LinuxSeccomp.SECCOMP_RET_USER_NOTIF:
            // No ptrace tracer and no notification listener in the sandbox: seccomp(2) fails the syscall with ENOSYS.
            return SyscallError.enosys.returnValue
        case LinuxSeccomp.SECCOMP_RET_TRAP:
            // syscall_rollback: rax holds the syscall number again for the handler.
            forceSignal(seccompSignalInfo(number, data: data))
            return Int64(bitPattern: registers.origRax)
        case let action:
            kernel.logger.info("seccomp: process \(processID) (\(name)) killed by SIGSYS on \(SyscallTable.name(of: number)) (\(number))")
            if action == LinuxSeccomp.SECCOMP_RET_KILL_THREAD {
                // do_exit(SIGSYS): this thread only, the others run on; if it
                // is the last when it leaves, the process dies of SIGSYS
                // (decided under the group's lock, ThreadGroup.remove).
                exitCode = Signal.badSystemCall.rawValue
                exitSignal = .badSystemCall
            } else {
                // KILL_PROCESS or an unknown action: the process dies of
                // SIGSYS (core dumped where RLIMIT_CORE allows).
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

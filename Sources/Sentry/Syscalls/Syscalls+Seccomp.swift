/// seccomp(2) and prctl's PR_GET_SECCOMP/PR_SET_SECCOMP: an application
/// installs classic BPF filters on itself (SeccompProgram), evaluated with
/// the OCI profile's before each of its syscalls (Task+Seccomp).
/// SECCOMP_MODE_STRICT and user notification are not supported (EINVAL).
extension SyscallTable {
    mutating func registerSeccomp() {
        register(317) { task, args throws(SyscallError) in                                 // seccomp
            try Seccomp.seccomp(task, operation: args.uint(0), flags: args.uint(1), arguments: args.pointer(2))
        }
    }
}

enum Seccomp {
    static func seccomp(_ task: Task, operation: UInt32, flags: UInt32, arguments: UInt64) throws(SyscallError) -> Int64 {
        switch operation {
        case LinuxSeccomp.SECCOMP_SET_MODE_FILTER:
            try setFilter(task, flags: flags, program: arguments)
            return 0
        case LinuxSeccomp.SECCOMP_GET_ACTION_AVAIL:
            guard flags == 0 else { throw .einval }
            let action = try task.copyIn(UInt32.self, from: arguments)
            guard LinuxSeccomp.supportedActions.contains(action) else { throw .eopnotsupp }
            return 0
        default:
            // SECCOMP_SET_MODE_STRICT and SECCOMP_GET_NOTIF_SIZES included: not supported.
            throw .einval
        }
    }

    /// prctl(PR_GET_SECCOMP): the mode, filter when any filter applies.
    static func mode(_ task: Task) -> Int64 {
        task.isSeccompFiltered ? LinuxSeccomp.SECCOMP_MODE_FILTER : LinuxSeccomp.SECCOMP_MODE_DISABLED
    }

    /// seccomp_set_mode_filter: flags, then the program's length, then the
    /// privilege (no_new_privs or CAP_SYS_ADMIN), then its instructions.
    static func setFilter(_ task: Task, flags: UInt32, program address: UInt64) throws(SyscallError) {
        let known = LinuxSeccomp.SECCOMP_FILTER_FLAG_TSYNC | LinuxSeccomp.SECCOMP_FILTER_FLAG_LOG
            | LinuxSeccomp.SECCOMP_FILTER_FLAG_SPEC_ALLOW
        guard flags & ~known == 0 else { throw .einval }
        // struct sock_fprog: unsigned short len, then (aligned) the instructions' address.
        let header = try task.copyIn(from: address, count: 16)
        let length = Int(header[0]) | Int(header[1]) << 8
        let instructionsAddress = header[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length >= 1, length <= LinuxSeccomp.BPF_MAXINSNS else { throw .einval }
        guard task.controls.noNewPrivileges || task.credentials.hasCapability(LinuxProcess.CAP_SYS_ADMIN) else { throw .eacces }
        let bytes = try task.copyIn(from: instructionsAddress, count: length * LinuxSeccomp.sockFilterSize)
        let instructions = stride(from: 0, to: bytes.count, by: LinuxSeccomp.sockFilterSize).map {
            SeccompProgram.Instruction(bytes: bytes[$0..<$0 + LinuxSeccomp.sockFilterSize])
        }
        guard let program = SeccompProgram(instructions) else { throw .einval }
        // MAX_INSNS_PER_PATH: every filter's length plus 4 each.
        let total = (task.seccompPrograms + [program]).reduce(0) { $0 + $1.instructions.count + 4 }
        guard total <= LinuxSeccomp.MAX_INSNS_PER_PATH else { throw .enomem }
        // TSYNC needs every thread's filters changed from their own
        // threads; with one thread it asks nothing more.
        if flags & LinuxSeccomp.SECCOMP_FILTER_FLAG_TSYNC != 0, (task.threadGroup?.members.count ?? 1) > 1 {
            throw .einval
        }
        task.seccompPrograms.append(program)
    }
}

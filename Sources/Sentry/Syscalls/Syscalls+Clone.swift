/// fork, vfork, clone and clone3: new processes (Task+Clone.swift).
extension SyscallTable {
    mutating func registerClone() {
        register(57) { task, _ throws(SyscallError) in                                      // fork
            Int64(try task.clone(CloneRequest(flags: 0, exitSignal: .child)))
        }
        register(58) { task, _ throws(SyscallError) in                                      // vfork
            Int64(try task.clone(CloneRequest(flags: LinuxProcess.CLONE_VM | LinuxProcess.CLONE_VFORK,
                                              exitSignal: .child)))
        }
        register(56, Clone.clone)
        register(435, Clone.clone3)
    }
}

enum Clone {
    /// clone(flags, stack, parent_tid, child_tid, tls), x86-64's argument
    /// order. The legacy call reads the low 32 bits of flags; their low byte
    /// is the exit signal.
    static func clone(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = UInt64(args.uint(0))
        let request = CloneRequest(flags: flags & ~LinuxProcess.CSIGNAL,
                                   exitSignal: Signal(rawValue: Int32(truncatingIfNeeded: flags & LinuxProcess.CSIGNAL)),
                                   stack: args.pointer(1), parentTID: args.pointer(2), childTID: args.pointer(3),
                                   tls: args.pointer(4), pidfd: args.pointer(2))
        return Int64(try task.clone(request))
    }

    /// clone3(args, size): the struct's size is checked as copy_struct_from_user
    /// does (bytes past what this kernel knows must be zero), then its
    /// fields as clone3_args_valid does.
    static func clone3(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0)
        let size = args.uint64(1)
        guard size >= UInt64(LinuxProcess.CLONE_ARGS_SIZE_VER0) else { throw .einval }
        guard size <= UInt64(LinuxProcess.cloneArgsMaxSize) else { throw .e2big }
        let known = min(Int(size), LinuxProcess.CLONE_ARGS_SIZE_VER2)
        let bytes = try task.copyIn(from: address, count: Int(size))
        guard bytes[known...].allSatisfy({ $0 == 0 }) else { throw .e2big }
        var raw = RawCloneArgs()
        withUnsafeMutableBytes(of: &raw) { target in
            bytes.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(known)))
            }
        }
        guard raw.exitSignal & ~LinuxProcess.CSIGNAL == 0,
              let signalNumber = Int32(exactly: raw.exitSignal),
              signalNumber == 0 || Signal(rawValue: signalNumber).isValid else { throw .einval }
        // set_tid (choosing the child's PID) needs a checkpoint capability this kernel does not grant.
        if raw.setTIDSize > 0 || raw.setTID != 0 { throw .einval }
        let flags = raw.flags
        let known64 = UInt64(UInt32.max) | LinuxProcess.CLONE_CLEAR_SIGHAND | LinuxProcess.CLONE_INTO_CGROUP
        guard flags & ~known64 == 0,
              flags & (LinuxProcess.CLONE_DETACHED | (LinuxProcess.CSIGNAL & ~LinuxProcess.CLONE_NEWTIME)) == 0,
              flags & (LinuxProcess.CLONE_SIGHAND | LinuxProcess.CLONE_CLEAR_SIGHAND)
                != LinuxProcess.CLONE_SIGHAND | LinuxProcess.CLONE_CLEAR_SIGHAND,
              flags & (LinuxProcess.CLONE_THREAD | LinuxProcess.CLONE_PARENT) == 0 || signalNumber == 0,
              (raw.stack == 0) == (raw.stackSize == 0) else { throw .einval }
        // There is no cgroup filesystem to name a cgroup in.
        if flags & LinuxProcess.CLONE_INTO_CGROUP != 0 { throw .einval }
        let request = CloneRequest(flags: flags, exitSignal: Signal(rawValue: signalNumber),
                                   stack: raw.stack == 0 ? 0 : raw.stack &+ raw.stackSize,
                                   parentTID: raw.parentTID, childTID: raw.childTID, tls: raw.tls, pidfd: raw.pidfd)
        return Int64(try task.clone(request))
    }
}

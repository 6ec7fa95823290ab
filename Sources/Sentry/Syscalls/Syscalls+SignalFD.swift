/// signalfd and signalfd4 (fs/signalfd.c); the file is Signals/SignalFile.swift.
extension SyscallTable {
    mutating func registerSignalFD() {
        register(282, SignalFDSyscalls.signalfd)
        register(289, SignalFDSyscalls.signalfd4)
    }
}

enum SignalFDSyscalls {
    static func signalfd(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try make(task, fd: args.int(0), maskAddress: args.pointer(1), size: args.uint64(2), flags: 0)
    }

    static func signalfd4(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try make(task, fd: args.int(0), maskAddress: args.pointer(1), size: args.uint64(2), flags: args.uint(3))
    }

    /// EINVAL for a mask size other than a sigset_t's, EFAULT reading it,
    /// EINVAL for unknown flags; fd -1 makes a new signalfd (flags apply),
    /// another fd must be a signalfd (EBADF if none, EINVAL if another
    /// file), whose mask is replaced (flags ignored).
    private static func make(_ task: Task, fd: Int32, maskAddress: UInt64, size: UInt64,
                             flags: UInt32) throws(SyscallError) -> Int64 {
        guard size == LinuxSignal.sigsetSize else { throw .einval }
        let mask = SignalSet(rawValue: try task.copyIn(UInt64.self, from: maskAddress))
        guard flags & ~(TimerABI.SFD_CLOEXEC | TimerABI.SFD_NONBLOCK) == 0 else { throw .einval }
        guard fd == -1 else {
            guard let file = try task.fdTable.get(fd) as? SignalFile else { throw .einval }
            file.setMask(mask)
            return Int64(fd)
        }
        let file = SignalFile(kernel: task.kernel, mask: mask, flags: flags & TimerABI.SFD_NONBLOCK)
        return Int64(try task.fdTable.install(file, closeOnExec: flags & TimerABI.SFD_CLOEXEC != 0,
                                              limit: task.fileDescriptorLimit))
    }
}

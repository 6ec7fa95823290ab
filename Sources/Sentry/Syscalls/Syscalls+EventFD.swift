/// eventfd, eventfd2 (fs/eventfd.c); the file is EventFD/EventFile.swift.
extension SyscallTable {
    mutating func registerEventFD() {
        register(284, EventFDSyscalls.eventfd)
        register(290, EventFDSyscalls.eventfd2)
    }
}

enum EventFDSyscalls {
    static func eventfd(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try create(task, initialValue: args.uint(0), flags: 0)
    }

    static func eventfd2(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try create(task, initialValue: args.uint(0), flags: args.uint(1))
    }

    /// do_eventfd: EINVAL for flags beyond EFD_SEMAPHORE, EFD_CLOEXEC, EFD_NONBLOCK.
    private static func create(_ task: Task, initialValue: UInt32, flags: UInt32) throws(SyscallError) -> Int64 {
        let known = EpollABI.EFD_SEMAPHORE | EpollABI.EFD_CLOEXEC | EpollABI.EFD_NONBLOCK
        guard flags & ~known == 0 else { throw .einval }
        let file = EventFile(initialValue: UInt64(initialValue), semaphore: flags & EpollABI.EFD_SEMAPHORE != 0,
                             flags: flags & EpollABI.EFD_NONBLOCK)
        return Int64(try task.fdTable.install(file, closeOnExec: flags & EpollABI.EFD_CLOEXEC != 0,
                                              limit: task.fileDescriptorLimit))
    }
}

/// timerfd_create, timerfd_settime, timerfd_gettime (fs/timerfd.c); the
/// file is Time/TimerFile.swift.
extension SyscallTable {
    mutating func registerTimerFD() {
        register(283, TimerFDSyscalls.timerfdCreate)
        register(286, TimerFDSyscalls.timerfdSettime)
        register(287, TimerFDSyscalls.timerfdGettime)
    }
}

enum TimerFDSyscalls {
    /// EINVAL for unknown flags or a clock without timerfds; EPERM for an
    /// alarm clock without CAP_WAKE_ALARM.
    static func timerfdCreate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let clock = args.int(0), flags = args.uint(1)
        guard flags & ~(TimerABI.TFD_CLOEXEC | TimerABI.TFD_NONBLOCK) == 0, TimerFile.clocks.contains(clock),
              let kernel = task.kernel else { throw .einval }
        try checkAlarm(task, clock)
        let file = TimerFile(kernel: kernel, clock: clock, flags: flags & TimerABI.TFD_NONBLOCK)
        return Int64(try task.fdTable.install(file, closeOnExec: flags & TimerABI.TFD_CLOEXEC != 0,
                                              limit: task.fileDescriptorLimit))
    }

    /// EFAULT reading the new value; EINVAL for unknown flags or an invalid
    /// time; EBADF, or EINVAL for a file that is no timerfd; the old setting
    /// written after. TFD_TIMER_CANCEL_ON_SET is accepted: nothing in a
    /// container sets the realtime clock.
    static func timerfdSettime(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let new = try task.copyIn(PosixTimerSyscalls.Itimerspec.self, from: args.pointer(2))
        let flags = args.int(1)
        guard flags & ~(TimerABI.TFD_TIMER_ABSTIME | TimerABI.TFD_TIMER_CANCEL_ON_SET) == 0,
              new.value.isValid, new.interval.isValid else { throw .einval }
        let file = try timerFile(task, args.int(0))
        try checkAlarm(task, file.clock)
        let old = file.set(value: new.value.total, interval: new.interval.total,
                           absolute: flags & TimerABI.TFD_TIMER_ABSTIME != 0)
        if args.pointer(3) != 0 { try task.copyOut(value: PosixTimerSyscalls.itimerspec(old), to: args.pointer(3)) }
        return 0
    }

    static func timerfdGettime(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try timerFile(task, args.int(0))
        try task.copyOut(value: PosixTimerSyscalls.itimerspec(file.setting), to: args.pointer(1))
        return 0
    }

    private static func timerFile(_ task: Task, _ fd: Int32) throws(SyscallError) -> TimerFile {
        guard let file = try task.fdTable.get(fd) as? TimerFile else { throw .einval }
        return file
    }

    private static func checkAlarm(_ task: Task, _ clock: Int32) throws(SyscallError) {
        if clock == Time.realtimeAlarm || clock == Time.boottimeAlarm,
           !task.credentials.hasCapability(TimerABI.CAP_WAKE_ALARM) {
            throw .eperm
        }
    }
}

import Glibc

/// futex(2) for single-threaded processes (kernel/futex/syscalls.c): until
/// clone exists no other task can wait on or wake a futex, so FUTEX_WAKE
/// finds nobody and FUTEX_WAIT sleeps until its timeout or an interruption.
/// That is what glibc needs for pthread_once and uncontended locks (an
/// ENOSYS here makes it abort). Waiter queues come with threads; no state
/// is kept, so nothing needs saving.
extension SyscallTable {
    mutating func registerFutex() {
        register(202, Futex.futex)
    }
}

enum Futex {
    static let wait: UInt32 = 0, wake: UInt32 = 1, waitBitset: UInt32 = 9, wakeBitset: UInt32 = 10
    static let privateFlag: UInt32 = 128, clockRealtimeFlag: UInt32 = 256
    static let matchAny: UInt32 = 0xffff_ffff

    static func futex(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), operation = args.uint(1)
        let command = operation & ~(privateFlag | clockRealtimeFlag)
        var deadline: Int64? = nil
        let clock = operation & clockRealtimeFlag != 0 ? Time.realtime : Time.monotonic
        if command == wait || command == waitBitset, args.pointer(3) != 0 {
            let timeout = try task.copyIn(Time.Timespec.self, from: args.pointer(3))
            guard timeout.isValid else { throw .einval }
            // FUTEX_WAIT's timeout is relative; FUTEX_WAIT_BITSET's is absolute.
            deadline = command == wait ? (try Time.now(task, clock)).addingSaturating(timeout.total) : timeout.total
        }
        if operation & clockRealtimeFlag != 0, command != waitBitset { throw .enosys }
        switch command {
        case wait, waitBitset:
            let bitset = command == wait ? matchAny : args.uint(5)
            guard bitset != 0 else { throw .einval }
            guard address % 4 == 0 else { throw .einval }
            guard try task.copyIn(UInt32.self, from: address) == args.uint(2) else { throw .eagain }
            try sleep(task, clock: clock, until: deadline)
            return 0
        case wake, wakeBitset:
            let bitset = command == wake ? matchAny : args.uint(5)
            guard bitset != 0 else { throw .einval }
            guard address % 4 == 0 else { throw .einval }
            return 0
        default:
            throw .enosys
        }
    }

    /// Nobody can wake the waiter: it ends with ETIMEDOUT at the deadline,
    /// EINTR when the task must exit, or ERESTARTSYS for a checkpoint (the
    /// call runs again on resume; a relative timeout then starts over).
    private static func sleep(_ task: Task, clock: Int32, until deadline: Int64?) throws(SyscallError) {
        while true {
            var hostDeadline = Int64.max / 2
            if let deadline {
                let current = try Time.now(task, clock)
                if current >= deadline { throw .etimedout }
                hostDeadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingSaturating(deadline - current)
            }
            do {
                try task.waiter.block(untilHostMonotonic: hostDeadline)
            } catch {
                if task.mustExit { throw .eintr }
                throw .erestartsys
            }
        }
    }
}

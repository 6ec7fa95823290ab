/// getrandom(2): host randomness written straight into application memory.
extension SyscallTable {
    mutating func registerRandom() {
        register(318, RandomSyscalls.getrandom)
    }
}

enum RandomSyscalls {
    static let nonBlock: UInt32 = 1, random: UInt32 = 2, insecure: UInt32 = 4

    static func getrandom(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(2)
        guard flags & ~(nonBlock | random | insecure) == 0, flags & (random | insecure) != (random | insecure) else {
            throw .einval
        }
        let count = Int(min(args.uint64(1), UInt64(Int32.max)))
        guard count > 0 else { return 0 }
        try task.withApplicationMemory(at: args.pointer(0), count: count, access: .write) { piece throws(SyscallError) in
            Random.fill(piece)
        }
        return Int64(count)
    }
}

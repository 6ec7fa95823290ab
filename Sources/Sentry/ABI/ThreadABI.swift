/// Linux's futex and membarrier ABI (uapi/linux/futex.h, uapi/linux/membarrier.h), with Linux's names.
enum LinuxFutex {
    static let FUTEX_WAIT: UInt32 = 0
    static let FUTEX_WAKE: UInt32 = 1
    static let FUTEX_REQUEUE: UInt32 = 3
    static let FUTEX_CMP_REQUEUE: UInt32 = 4
    static let FUTEX_WAKE_OP: UInt32 = 5
    static let FUTEX_WAIT_BITSET: UInt32 = 9
    static let FUTEX_WAKE_BITSET: UInt32 = 10
    static let FUTEX_PRIVATE_FLAG: UInt32 = 128
    static let FUTEX_CLOCK_REALTIME: UInt32 = 256
    static let FUTEX_BITSET_MATCH_ANY: UInt32 = 0xffff_ffff

    // FUTEX_WAKE_OP's encoded operation: op:4 cmp:4 oparg:12 cmparg:12,
    // with FUTEX_OP_OPARG_SHIFT in op meaning "1 << oparg".
    static let FUTEX_OP_SET: UInt32 = 0
    static let FUTEX_OP_XOR: UInt32 = 4
    static let FUTEX_OP_OPARG_SHIFT: UInt32 = 8
    static let FUTEX_OP_CMP_EQ: UInt32 = 0
    static let FUTEX_OP_CMP_NE: UInt32 = 1
    static let FUTEX_OP_CMP_LT: UInt32 = 2
    static let FUTEX_OP_CMP_LE: UInt32 = 3
    static let FUTEX_OP_CMP_GT: UInt32 = 4
    static let FUTEX_OP_CMP_GE: UInt32 = 5
}

enum LinuxMembarrier {
    static let MEMBARRIER_CMD_QUERY: Int32 = 0
    static let MEMBARRIER_CMD_GLOBAL: Int32 = 1
    static let MEMBARRIER_CMD_GLOBAL_EXPEDITED: Int32 = 2
    static let MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: Int32 = 4
    static let MEMBARRIER_CMD_PRIVATE_EXPEDITED: Int32 = 8
    static let MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: Int32 = 16
}

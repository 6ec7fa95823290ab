/// Linux's futex and membarrier ABI (uapi/linux/futex.h, uapi/linux/membarrier.h), with Linux's names.
enum LinuxFutex {
    static let FUTEX_WAIT: UInt32 = 0
    static let FUTEX_WAKE: UInt32 = 1
    static let FUTEX_REQUEUE: UInt32 = 3
    static let FUTEX_CMP_REQUEUE: UInt32 = 4
    static let FUTEX_WAKE_OP: UInt32 = 5
    static let FUTEX_LOCK_PI: UInt32 = 6
    static let FUTEX_UNLOCK_PI: UInt32 = 7
    static let FUTEX_TRYLOCK_PI: UInt32 = 8
    static let FUTEX_WAIT_BITSET: UInt32 = 9
    static let FUTEX_WAKE_BITSET: UInt32 = 10
    static let FUTEX_WAIT_REQUEUE_PI: UInt32 = 11
    static let FUTEX_CMP_REQUEUE_PI: UInt32 = 12
    static let FUTEX_LOCK_PI2: UInt32 = 13
    static let FUTEX_PRIVATE_FLAG: UInt32 = 128
    static let FUTEX_CLOCK_REALTIME: UInt32 = 256
    static let FUTEX_BITSET_MATCH_ANY: UInt32 = 0xffff_ffff

    // The futex word of a PI or robust lock: the owner's TID and two flags.
    static let FUTEX_WAITERS: UInt32 = 0x8000_0000
    static let FUTEX_OWNER_DIED: UInt32 = 0x4000_0000
    static let FUTEX_TID_MASK: UInt32 = 0x3fff_ffff

    // futex_waitv (futex2): flags of each entry, and how many entries at most.
    static let FUTEX2_SIZE_U32: UInt32 = 0x02
    static let FUTEX2_SIZE_MASK: UInt32 = 0x03
    static let FUTEX2_PRIVATE: UInt32 = FUTEX_PRIVATE_FLAG
    static let FUTEX2_VALID_MASK: UInt32 = FUTEX2_SIZE_MASK | FUTEX2_PRIVATE
    static let FUTEX_WAITV_MAX: UInt32 = 128

    /// How many entries of a robust list a dying thread walks at most.
    static let ROBUST_LIST_LIMIT = 2048

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

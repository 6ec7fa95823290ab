/// Linux's file-lock ABI with Linux's names (uapi/asm-generic/fcntl.h,
/// uapi/linux/fcntl.h, fs/locks.c): flock(2)'s operations, fcntl's lock
/// commands, the lock types and struct flock as x86_64 lays it out.
enum LockABI {
    static let LOCK_SH: UInt32 = 1
    static let LOCK_EX: UInt32 = 2
    static let LOCK_NB: UInt32 = 4
    static let LOCK_UN: UInt32 = 8
    /// The old mandatory-lock bit: Linux ignores the call (returns 0).
    static let LOCK_MAND: UInt32 = 32

    static let F_GETLK: Int32 = 5
    static let F_SETLK: Int32 = 6
    static let F_SETLKW: Int32 = 7
    static let F_OFD_GETLK: Int32 = 36
    static let F_OFD_SETLK: Int32 = 37
    static let F_OFD_SETLKW: Int32 = 38

    static let F_RDLCK: Int16 = 0
    static let F_WRLCK: Int16 = 1
    static let F_UNLCK: Int16 = 2

    /// struct flock: l_type (short), l_whence (short), 4 bytes of padding,
    /// l_start (off_t), l_len (off_t), l_pid (pid_t), 4 bytes of padding.
    static let flockSize = 32
    static let typeOffset = 0
    static let whenceOffset = 2
    static let startOffset = 8
    static let lengthOffset = 16
    static let pidOffset = 24

    /// OFFSET_MAX: a lock "to the end of the file" ends here.
    static let offsetMaximum = Int64.max
    /// MAX_DEADLK_ITERATIONS: how far posix_locks_deadlock follows a chain of waiters.
    static let maximumDeadlockIterations = 10
}

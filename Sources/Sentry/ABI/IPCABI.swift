/// SysV IPC's constants (linux/ipc.h, linux/shm.h) and its x86-64 layouts.
enum LinuxIPC {
    static let IPC_PRIVATE: Int32 = 0
    static let IPC_CREAT: Int32 = 0o1000
    static let IPC_EXCL: Int32 = 0o2000

    static let IPC_RMID: Int32 = 0, IPC_SET: Int32 = 1, IPC_STAT: Int32 = 2, IPC_INFO: Int32 = 3
    static let SHM_LOCK: Int32 = 11, SHM_UNLOCK: Int32 = 12, SHM_STAT: Int32 = 13, SHM_INFO: Int32 = 14
    static let SHM_STAT_ANY: Int32 = 15

    /// shmat's flags.
    static let SHM_RDONLY: Int32 = 0o10000, SHM_RND: Int32 = 0o20000, SHM_REMAP: Int32 = 0o40000
    static let SHM_EXEC: Int32 = 0o100000
    /// shmget's SHM_HUGETLB.
    static let SHM_HUGETLB: Int32 = 0o4000
    /// Kept in a segment's mode beside its permissions.
    static let SHM_DEST: UInt32 = 0o1000, SHM_LOCKED: UInt32 = 0o2000

    /// SHMLBA: shmat's address alignment on x86 (a page).
    static let SHMLBA = Page.size
    /// The defaults of /proc/sys/kernel/shm{max,all,mni} (linux/shm.h).
    static let SHMMAX: UInt64 = UInt64.max - (1 << 24)
    static let SHMALL: UInt64 = UInt64.max - (1 << 24)
    static let SHMMNI = 4096
    static let SHMMIN: UInt64 = 1
    /// An ID is its slot plus this times the slot's use count (ipc_buildid).
    static let SEQ_MULTIPLIER: Int32 = 32768
    /// IPCMNI's sequence limit (IPCID_SEQ_MAX with the default IPCMNI).
    static let IPCID_SEQ_MAX: Int32 = Int32.max / SEQ_MULTIPLIER

    /// struct shmid64_ds: ipc64_perm (key, uid, gid, cuid, cgid, mode, seq)
    /// in 48 bytes, then segsz, atime, dtime, ctime, cpid, lpid, nattch.
    static let shmidSize = 112
    /// struct shminfo64: nine unsigned longs.
    static let shminfoSize = 72
    /// struct shm_info: an int (padded), then five unsigned longs.
    static let shmInfoSize = 48
}

/// SysV semaphores' constants (linux/sem.h) and limits (the defaults of
/// /proc/sys/kernel/sem).
enum LinuxSemaphore {
    static let GETPID: Int32 = 11, GETVAL: Int32 = 12, GETALL: Int32 = 13, GETNCNT: Int32 = 14, GETZCNT: Int32 = 15
    static let SETVAL: Int32 = 16, SETALL: Int32 = 17, SEM_STAT: Int32 = 18, SEM_INFO: Int32 = 19
    static let SEM_STAT_ANY: Int32 = 20
    static let SEM_UNDO: Int16 = 0x1000
    static let IPC_NOWAIT: Int16 = 0o4000

    static let SEMMSL = 32000, SEMMNI = 32000, SEMOPM = 500
    static let SEMMNS = SEMMNI * SEMMSL
    static let SEMVMX: Int32 = 32767
    static let SEMAEM: Int32 = SEMVMX

    /// struct sembuf: sem_num (u16), sem_op (s16), sem_flg (s16).
    static let sembufSize = 6
    /// struct semid64_ds on x86-64: ipc64_perm, otime, a pad, ctime, a pad, nsems, two pads.
    static let semidSize = 104
    /// struct seminfo: ten ints.
    static let seminfoSize = 40
}

/// SysV message queues' constants (linux/msg.h) and limits (the defaults
/// of /proc/sys/kernel/msg*).
enum LinuxMessageQueue {
    static let MSG_STAT: Int32 = 11, MSG_INFO: Int32 = 12, MSG_STAT_ANY: Int32 = 13
    /// msgrcv's flags.
    static let MSG_NOERROR: Int32 = 0o10000, MSG_EXCEPT: Int32 = 0o20000, MSG_COPY: Int32 = 0o40000
    static let IPC_NOWAIT: Int32 = 0o4000

    static let MSGMNI = 32000, MSGMAX = 8192, MSGMNB = 16384, MSGSSZ = 16, MSGSEG = 0xffff

    /// struct msqid64_ds on x86-64: ipc64_perm, stime, rtime, ctime, cbytes,
    /// qnum, qbytes, lspid, lrpid, two pads.
    static let msqidSize = 120
    /// struct msginfo: seven ints and an unsigned short.
    static let msginfoSize = 32
}

/// Capability numbers the Sentry checks by name (linux/capability.h).
enum LinuxCapability {
    static let CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2, CAP_FOWNER = 3, CAP_FSETID = 4
    static let CAP_KILL = 5, CAP_SETGID = 6, CAP_SETUID = 7, CAP_SETPCAP = 8, CAP_LINUX_IMMUTABLE = 9
    static let CAP_IPC_LOCK = 14, CAP_IPC_OWNER = 15, CAP_SYS_ADMIN = 21, CAP_SYS_NICE = 23, CAP_SYS_RESOURCE = 24
    static let CAP_MAC_OVERRIDE = 32, CAP_SYSLOG = 34

    /// CAP_FS_MASK: the capabilities that follow the filesystem UID to and
    /// from root (cap_drop_fs_set / cap_raise_fs_set).
    static let filesystemMask: UInt64 = [CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID,
                                         CAP_LINUX_IMMUTABLE, CAP_MAC_OVERRIDE].reduce(0) { $0 | 1 << UInt64($1) }

    /// _LINUX_CAPABILITY_VERSION_1/2/3 of capget and capset's header.
    static let version1: UInt32 = 0x1998_0330, version2: UInt32 = 0x2007_1026, version3: UInt32 = 0x2008_0522

    /// PR_CAP_AMBIENT's operations.
    static let PR_CAP_AMBIENT_IS_SET: UInt64 = 1, PR_CAP_AMBIENT_RAISE: UInt64 = 2
    static let PR_CAP_AMBIENT_LOWER: UInt64 = 3, PR_CAP_AMBIENT_CLEAR_ALL: UInt64 = 4
}

/// prctl(PR_SET_SECUREBITS)'s flags (linux/securebits.h): each bit has a
/// lock bit just above it that keeps it as it is.
enum LinuxSecureBits {
    static let SECBIT_NOROOT: UInt32 = 1 << 0
    static let SECBIT_NO_SETUID_FIXUP: UInt32 = 1 << 2
    static let SECBIT_KEEP_CAPS: UInt32 = 1 << 4
    static let SECBIT_KEEP_CAPS_LOCKED: UInt32 = 1 << 5
    static let SECBIT_NO_CAP_AMBIENT_RAISE: UInt32 = 1 << 6
    static let allBits: UInt32 = 0x55
    static let allLocks: UInt32 = 0xaa
}

/// NGROUPS_MAX: the most supplementary groups setgroups takes.
enum LinuxGroups {
    static let NGROUPS_MAX = 65_536
}

/// Linux's inotify ABI with Linux's names (uapi/linux/inotify.h,
/// fs/notify/inotify): the event bits, the watch flags, inotify_init1's
/// flags and struct inotify_event's layout.
enum InotifyABI {
    static let IN_ACCESS: UInt32 = 0x1
    static let IN_MODIFY: UInt32 = 0x2
    static let IN_ATTRIB: UInt32 = 0x4
    static let IN_CLOSE_WRITE: UInt32 = 0x8
    static let IN_CLOSE_NOWRITE: UInt32 = 0x10
    static let IN_OPEN: UInt32 = 0x20
    static let IN_MOVED_FROM: UInt32 = 0x40
    static let IN_MOVED_TO: UInt32 = 0x80
    static let IN_CREATE: UInt32 = 0x100
    static let IN_DELETE: UInt32 = 0x200
    static let IN_DELETE_SELF: UInt32 = 0x400
    static let IN_MOVE_SELF: UInt32 = 0x800
    static let IN_ALL_EVENTS: UInt32 = 0xfff

    static let IN_UNMOUNT: UInt32 = 0x2000
    static let IN_Q_OVERFLOW: UInt32 = 0x4000
    static let IN_IGNORED: UInt32 = 0x8000

    static let IN_ONLYDIR: UInt32 = 0x0100_0000
    static let IN_DONT_FOLLOW: UInt32 = 0x0200_0000
    static let IN_EXCL_UNLINK: UInt32 = 0x0400_0000
    static let IN_MASK_CREATE: UInt32 = 0x1000_0000
    static let IN_MASK_ADD: UInt32 = 0x2000_0000
    static let IN_ISDIR: UInt32 = 0x4000_0000
    static let IN_ONESHOT: UInt32 = 0x8000_0000

    /// ALL_INOTIFY_BITS: a mask without any of these is EINVAL.
    static let allBits: UInt32 = IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED | IN_ONLYDIR
        | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ISDIR | IN_ONESHOT
    /// What a watch keeps of its add_watch mask.
    static let watchBits: UInt32 = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK

    static let IN_CLOEXEC: UInt32 = LinuxFile.closeOnExec
    static let IN_NONBLOCK: UInt32 = LinuxFile.nonBlocking

    /// struct inotify_event without its name: wd, mask, cookie, len.
    static let eventHeaderSize = 16
    /// /proc/sys/fs/inotify/max_queued_events' default.
    static let maximumQueuedEvents = 16384
}

/// Linux's epoll and eventfd ABI with Linux's names (uapi/linux/eventpoll.h,
/// fs/eventpoll.c, uapi/linux/eventfd.h): epoll_ctl's operations, the flag
/// bits above the poll events, and struct epoll_event as x86_64 packs it.
enum EpollABI {
    static let EPOLL_CTL_ADD: Int32 = 1
    static let EPOLL_CTL_DEL: Int32 = 2
    static let EPOLL_CTL_MOD: Int32 = 3

    static let EPOLL_CLOEXEC: UInt32 = LinuxFile.closeOnExec

    static let EPOLLEXCLUSIVE: UInt32 = 1 << 28
    static let EPOLLWAKEUP: UInt32 = 1 << 29
    static let EPOLLONESHOT: UInt32 = 1 << 30
    static let EPOLLET: UInt32 = 1 << 31

    /// EP_PRIVATE_BITS: what a ONESHOT item keeps once it fired (disabled).
    static let privateBits: UInt32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
    /// EPOLLEXCLUSIVE_OK_BITS: the only events an exclusive item may ask for.
    static let exclusiveAllowed: UInt32 = EPOLLEXCLUSIVE | EPOLLWAKEUP | EPOLLET
        | PollEvents.input.rawValue | PollEvents.output.rawValue | PollEvents.error.rawValue | PollEvents.hangUp.rawValue
    /// EP_MAX_NESTS: how deep epoll instances may watch each other.
    static let maximumNesting = 4
    /// CAP_BLOCK_SUSPEND, without which EPOLLWAKEUP is dropped silently.
    static let CAP_BLOCK_SUSPEND = 36

    /// struct epoll_event: __attribute__((packed)) on x86_64, 12 bytes.
    static let eventSize = 12
    /// EP_MAX_EVENTS: INT_MAX / sizeof(struct epoll_event).
    static let maximumEvents = Int32.max / Int32(eventSize)

    static let EFD_SEMAPHORE: UInt32 = 1
    static let EFD_CLOEXEC: UInt32 = LinuxFile.closeOnExec
    static let EFD_NONBLOCK: UInt32 = LinuxFile.nonBlocking
    /// The most an eventfd's counter holds (ULLONG_MAX - 1).
    static let eventCounterMaximum: UInt64 = .max - 1
}

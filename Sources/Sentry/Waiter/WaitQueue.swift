import Synchronization

/// A registration on a `WaitQueue`: the events it cares about and what to do
/// when one happens (wake a task's `Waiter`, queue an epoll item). The
/// callback runs on the notifier's thread and says whether it woke someone;
/// it takes only locks below the notifier's (a Waiter's, an epoll instance's
/// lists). An exclusive entry (EPOLLEXCLUSIVE) is skipped once another
/// exclusive one woke someone for the same notification.
public final class WaitEntry: @unchecked Sendable { // immutable
    public let mask: PollEvents
    public let isExclusive: Bool
    let callback: @Sendable (PollEvents) -> Bool

    public init(mask: PollEvents, isExclusive: Bool = false, callback: @escaping @Sendable (PollEvents) -> Bool) {
        self.mask = mask
        self.isExclusive = isExclusive
        self.callback = callback
    }
}

/// The entries interested in one object's readiness (a pipe, a timerfd, a
/// thread group's signals, a host FD behind the host poller). The object
/// calls `notify` with the events that may have become ready; each entry
/// whose mask meets them runs its callback. Never saved: waiters register
/// again when their task re-runs its syscall, and epoll instances register
/// their items again after a load.
public final class WaitQueue: @unchecked Sendable { // `entries` is guarded by its Mutex
    /// Taken under the notifying object's lock; callbacks run after it is let go.
    private let entries = Mutex<[WaitEntry]>([])

    public init() {}

    public func register(_ entry: WaitEntry) {
        entries.withLock { entries in
            if !entries.contains(where: { $0 === entry }) { entries.append(entry) }
        }
    }

    public func unregister(_ entry: WaitEntry) {
        entries.withLock { $0.removeAll { $0 === entry } }
    }

    public var isEmpty: Bool { entries.withLock { $0.isEmpty } }

    /// The union of the registered entries' masks (what the host poller arms).
    public var interest: PollEvents {
        entries.withLock { $0.reduce(PollEvents()) { $0.union($1.mask) } }
    }

    /// Runs the callback of every entry whose mask meets `events`; of the
    /// exclusive ones, only until one wakes someone (Linux's nr_exclusive 1).
    public func notify(_ events: PollEvents) {
        let matched = entries.withLock { $0.filter { !$0.mask.isDisjoint(with: events) } }
        var exclusiveWoke = false
        for entry in matched where !entry.isExclusive { _ = entry.callback(events) }
        for entry in matched where entry.isExclusive && !exclusiveWoke { exclusiveWoke = entry.callback(events) }
    }
}

/// poll(2)'s event bits (include/uapi/asm-generic/poll.h, as x86_64 uses
/// them unchanged) and epoll's, which share the low bits: what a file
/// reports ready in `FileDescription.readiness` and what entries ask for.
public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let input = PollEvents(rawValue: 0x001)
    public static let priority = PollEvents(rawValue: 0x002)
    public static let output = PollEvents(rawValue: 0x004)
    public static let error = PollEvents(rawValue: 0x008)
    public static let hangUp = PollEvents(rawValue: 0x010)
    public static let invalid = PollEvents(rawValue: 0x020)
    public static let readNormal = PollEvents(rawValue: 0x040)
    public static let readBand = PollEvents(rawValue: 0x080)
    public static let writeNormal = PollEvents(rawValue: 0x100)
    public static let writeBand = PollEvents(rawValue: 0x200)
    public static let message = PollEvents(rawValue: 0x400)
    /// POLLRDHUP (EPOLLRDHUP): the peer shut down its writing side.
    public static let readHangUp = PollEvents(rawValue: 0x2000)

    /// What a file without a poll operation reports (DEFAULT_POLLMASK): it
    /// never blocks, so it is always readable and writable.
    public static let alwaysReady: PollEvents = [.input, .output, .readNormal, .writeNormal]
    public static let readable: PollEvents = [.input, .readNormal]
    public static let writable: PollEvents = [.output, .writeNormal]
    /// Reported whether asked for or not (poll's `filter` always includes them).
    public static let unmaskable: PollEvents = [.error, .hangUp]
    /// Every event an object announces: for entries that want to hear of any change.
    public static let all = PollEvents(rawValue: 0xffff)
}

import State
import Synchronization

/// One registration in an epoll instance (Linux's struct epitem): a file,
/// the FD number it was added under, the events asked (with EPOLLET,
/// EPOLLONESHOT, EPOLLEXCLUSIVE) and the caller's data. Its entry on the
/// file's queue puts it on the owner's ready list.
public final class EpollItem: Savable, @unchecked Sendable { // the fields are guarded by the owner's `lists` lock
    public static let savedTypeName = "epoll.Item"
    public static let notSaved: Set<String> = [
        "entry", // host-only: registered again by the owner's afterLoad
        "isReady", // saved as the owner's ready list
        "isLinked", // saved as the owner's interest list
    ]

    public internal(set) var owner: EpollFile?
    public internal(set) var file: FileDescription?
    var fd: Int32 = 0
    var events: UInt32 = 0
    var data: UInt64 = 0
    var entry: WaitEntry?
    var isReady = false
    var isLinked = false

    public required init() {}

    init(owner: EpollFile, file: FileDescription, fd: Int32, events: UInt32, data: UInt64) {
        self.owner = owner
        self.file = file
        self.fd = fd
        self.events = events
        self.data = data
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("owner", owner)
        try sink.save("file", file)
        try sink.save("fd", fd)
        try sink.save("events", events)
        try sink.save("data", data)
    }

    public func load(from source: inout LoadSource) throws {
        owner = try source.load("owner")
        file = try source.load("file")
        fd = try source.load("fd")
        events = try source.load("events")
        data = try source.load("data")
        try ImageValidation.require(fd >= 0, field: "fd", "negative FD \(fd)")
    }

    /// The poll events asked (the flag bits off).
    var mask: PollEvents { PollEvents(rawValue: events & ~EpollABI.privateBits) }
}

/// An epoll instance (fs/eventpoll.c): the interest list of (file, FD)
/// items and the ready list of those whose file announced an event asked
/// for. epoll_wait takes ready items in order, asks each file its readiness
/// now, reports those with events; a level-triggered item goes back to the
/// list's end, an edge-triggered one waits for the next announcement, a
/// one-shot one is disabled until EPOLL_CTL_MOD. An instance is itself
/// pollable (readable while an item is ready), so instances nest. Both lists
/// are saved; entries on the files' queues are registered again after a load.
public final class EpollFile: AnonymousFile, @unchecked Sendable { // `items` and `ready` are guarded by `lists`
    override public class var savedTypeName: String { "epoll.File" }
    override public class var notSaved: Set<String> { super.notSaved.union(["control", "lists", "queue"]) }

    /// Serialises changes to the interest list (epoll_ctl, a watched file's
    /// last close, this instance's), as Linux's ep->mtx: an item is unlinked
    /// and linked again by one of them at a time, so no entry outlives its
    /// item's place in the list. Taken first: the files' queue locks and
    /// `lists` nest inside; never taken under them (callbacks take `lists` only).
    private let control = Mutex(())
    /// Taken in callbacks from the files' queues, so under their objects'
    /// locks: code holding it calls into no file and notifies no queue.
    private let lists = Mutex(())
    private var items: [EpollItem] = []
    private var ready: [EpollItem] = []
    /// Host-only: epoll_wait callers and the items of instances watching this one.
    let queue = WaitQueue()

    public required init() { super.init() }

    override init(flags: UInt32) { super.init(flags: flags) }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let (items, ready) = lists.withLock { _ in (self.items, self.ready) }
        try sink.save("items", items)
        try sink.save("ready", ready)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        items = try source.load("items")
        ready = try source.load("ready")
        try ImageValidation.require(ready.allSatisfy { item in items.contains { $0 === item } }, field: "ready",
                                    "a ready item not in the interest list")
    }

    /// Items listen to their files again (nothing about waiting is saved).
    override public func afterLoad() throws {
        try super.afterLoad()
        for item in items {
            try ImageValidation.require(item.owner === self && item.file != nil, field: "items",
                                        "an item of another instance or without a file")
        }
        lists.withLock { _ in
            for item in items { item.isLinked = true }
            for item in ready { item.isReady = true }
        }
        for item in items { link(item) }
    }

    // MARK: The interest list (epoll_ctl)

    /// EPOLL_CTL_ADD: EEXIST if (file, fd) is there; the file is polled at
    /// once, so an already ready file is reported (once, if edge-triggered).
    func add(_ file: FileDescription, fd: Int32, events: UInt32, data: UInt64) throws(SyscallError) {
        let item = EpollItem(owner: self, file: file, fd: fd, events: events | PollEvents.unmaskable.rawValue, data: data)
        try control.withLock { _ throws(SyscallError) in
            try lists.withLock { _ throws(SyscallError) in
                guard !items.contains(where: { $0.file === file && $0.fd == fd }) else { throw .eexist }
                item.isLinked = true
                items.append(item)
            }
            link(item)
            pollNow(item)
        }
    }

    /// EPOLL_CTL_MOD: ENOENT if absent, EINVAL for an exclusive item.
    func modify(_ file: FileDescription, fd: Int32, events: UInt32, data: UInt64) throws(SyscallError) {
        try control.withLock { _ throws(SyscallError) in
            let item = try lists.withLock { _ throws(SyscallError) -> EpollItem in
                guard let item = items.first(where: { $0.file === file && $0.fd == fd }) else { throw .enoent }
                guard item.events & EpollABI.EPOLLEXCLUSIVE == 0 else { throw .einval }
                return item
            }
            unlinkEntry(item)
            lists.withLock { _ in
                item.events = events | PollEvents.unmaskable.rawValue
                item.data = data
            }
            link(item)
            pollNow(item)
        }
    }

    /// EPOLL_CTL_DEL: ENOENT if absent.
    func remove(_ file: FileDescription, fd: Int32) throws(SyscallError) {
        try control.withLock { _ throws(SyscallError) in
            guard let item = lists.withLock({ _ in items.first { $0.file === file && $0.fd == fd } }) else {
                throw .enoent
            }
            detachLocked(item)
            item.file?.epollWatches.withLock { $0.removeAll { $0 === item } }
        }
    }

    /// Takes `item` out of both lists and off its file's queue (the file's last close).
    func detach(_ item: EpollItem) {
        control.withLock { _ in detachLocked(item) }
    }

    /// `detach` with `control` held (EPOLL_CTL_DEL, this instance's last
    /// close too); the entry goes even if the item was unlinked already.
    private func detachLocked(_ item: EpollItem) {
        lists.withLock { _ in
            item.isLinked = false
            item.isReady = false
            items.removeAll { $0 === item }
            ready.removeAll { $0 === item }
        }
        unlinkEntry(item)
    }

    /// The instance's last reference: every item goes.
    override public func released() {
        control.withLock { _ in
            let all = lists.withLock { _ in items }
            for item in all {
                detachLocked(item)
                item.file?.epollWatches.withLock { $0.removeAll { $0 === item } }
            }
        }
    }

    /// Registers an entry for `item` on its file's queue and notes the item on the file.
    /// The entry holds the item strongly, as the item holds its owner: a weak
    /// reference would give both objects a side table, which makes every
    /// retain of them (epoll_wait takes several per ready item) a slow one.
    /// The cycle (item, entry) ends when the item is detached, which every
    /// way out of the interest list does; a notification racing with that
    /// finds the item unlinked and ignores it.
    private func link(_ item: EpollItem) {
        guard let file = item.file else { return }
        let (mask, exclusive) = lists.withLock { _ in (item.mask, item.events & EpollABI.EPOLLEXCLUSIVE != 0) }
        let entry = WaitEntry(mask: mask, isExclusive: exclusive) { [item] events in
            item.owner?.announced(item, events: events) ?? false
        }
        lists.withLock { _ in item.entry = entry }
        file.eventRegister(entry)
        file.epollWatches.withLock { watches in
            if !watches.contains(where: { $0 === item }) { watches.append(item) }
        }
    }

    private func unlinkEntry(_ item: EpollItem) {
        guard let entry = lists.withLock({ _ -> WaitEntry? in
            defer { item.entry = nil }
            return item.entry
        }) else { return }
        item.file?.eventUnregister(entry)
    }

    /// ep_poll_callback: a file announced `events`; a disabled one-shot
    /// item ignores it. Returns whether anyone waits on this instance (what
    /// an exclusive wake-up counts).
    private func announced(_ item: EpollItem, events: PollEvents) -> Bool {
        let queued = lists.withLock { _ -> Bool in
            guard item.isLinked, !item.mask.isEmpty, !item.mask.isDisjoint(with: events) else { return false }
            if !item.isReady {
                item.isReady = true
                ready.append(item)
            }
            return true
        }
        guard queued else { return false }
        let waited = !queue.isEmpty
        queue.notify(.readable)
        return waited
    }

    /// After ADD or MOD: a file ready now goes on the ready list.
    private func pollNow(_ item: EpollItem) {
        guard let file = item.file else { return }
        let mask = lists.withLock { _ in item.mask }
        guard !file.readiness(for: mask).intersection(mask).isEmpty else { return }
        _ = announced(item, events: mask)
    }

    // MARK: Taking events (epoll_wait)

    /// ep_send_events: up to `maximum` ready items with what their files
    /// report now, as (events, data), in ready-list order. The list is taken
    /// under the lock, the files are polled without it (their locks come
    /// first: they call `announced` under them), and one more turn of the
    /// lock settles every polled item: a level-triggered one reported goes
    /// back to the list's end, a one-shot one is disabled, the items not
    /// polled go back to its front.
    func takeEvents(maximum: Int) -> [(events: UInt32, data: UInt64)] {
        while true {
            let batch = lists.withLock { _ -> [(item: EpollItem, mask: PollEvents)] in
                defer { ready.removeAll(keepingCapacity: true) }
                return ready.map { item in
                    item.isReady = false
                    return (item, item.mask)
                }
            }
            guard !batch.isEmpty else { return [] }
            var polled: [PollEvents] = []
            polled.reserveCapacity(min(batch.count, maximum))
            var hits = 0
            for (item, mask) in batch {
                if hits == maximum { break }
                let events = item.file.map { $0.readiness(for: mask).intersection(mask) } ?? []
                if !events.isEmpty { hits += 1 }
                polled.append(events)
            }
            var results: [(events: UInt32, data: UInt64)] = []
            results.reserveCapacity(hits)
            let more = lists.withLock { _ -> Bool in
                let front = batch[polled.count...].map(\.item).filter { $0.isLinked && !$0.isReady }
                for item in front { item.isReady = true }
                if !front.isEmpty { ready.insert(contentsOf: front, at: 0) }
                for (index, events) in polled.enumerated() where !events.isEmpty {
                    let item = batch[index].item
                    guard item.isLinked, !item.mask.isEmpty else { continue }
                    if item.events & EpollABI.EPOLLONESHOT != 0 {
                        item.events &= EpollABI.privateBits
                    } else if item.events & EpollABI.EPOLLET == 0 && !item.isReady {
                        item.isReady = true
                        ready.append(item)
                    }
                    results.append((events.rawValue, item.data))
                }
                return !front.isEmpty
            }
            // Items reported ready and unlinked meanwhile (a racing
            // EPOLL_CTL_DEL) leave room for the ones not polled yet.
            if !results.isEmpty || !more { return results }
        }
    }

    // MARK: As a file

    /// ep_eventpoll_poll: readable while a ready item's file reports an
    /// event it asked for; items found not ready leave the list.
    override public func readiness(for mask: PollEvents) -> PollEvents {
        let candidates = lists.withLock { _ in ready.map { ($0, $0.file, $0.mask) } }
        var stale: [EpollItem] = []
        var any = false
        for (item, file, itemMask) in candidates {
            if let file, !file.readiness(for: itemMask).intersection(itemMask).isEmpty {
                any = true
                break
            }
            stale.append(item)
        }
        if !stale.isEmpty {
            lists.withLock { _ in
                for item in stale where item.isReady {
                    item.isReady = false
                    ready.removeAll { $0 === item }
                }
            }
        }
        return any ? PollEvents.readable.intersection(mask) : []
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { queue.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { queue.unregister(entry) }

    // MARK: Nesting (ep_loop_check)

    /// The epoll instances among this one's items' files.
    var nestedInstances: [EpollFile] {
        lists.withLock { _ in items.compactMap { $0.file as? EpollFile } }
    }

    /// Whether `target` is this instance or watches it, directly or through others.
    func isReached(from target: EpollFile, depth: Int = 0) -> Bool {
        if target === self { return true }
        guard depth <= EpollABI.maximumNesting else { return true }
        return target.nestedInstances.contains { isReached(from: $0, depth: depth + 1) }
    }

    /// How many instances deep this one's nested instances go (0: none).
    func depthBelow(_ limit: Int = EpollABI.maximumNesting + 1) -> Int {
        guard limit > 0 else { return 1 }
        return nestedInstances.map { 1 + $0.depthBelow(limit - 1) }.max() ?? 0
    }

    /// How many instances watch this one above it (0: none).
    func depthAbove(_ limit: Int = EpollABI.maximumNesting + 1) -> Int {
        guard limit > 0 else { return 1 }
        let owners = epollWatches.withLock { $0.compactMap(\.owner) }
        return owners.map { 1 + $0.depthAbove(limit - 1) }.max() ?? 0
    }
}

import State
import Synchronization

/// An inotify instance (fs/notify/inotify): its watches by descriptor and
/// the events queued for read(2). The VFS reports changes made inside the
/// sandbox through `Inotify`, on tmpfs and hostfs alike; each inode lists
/// the watches on it (`Inode.inotifyWatches`, rebuilt from the instances'
/// watches after a load). Watches and queued events are saved; readers and
/// pollers are not.
public final class InotifyFile: AnonymousFile, @unchecked Sendable { // watches, events and nextDescriptor are guarded by `state`
    override public class var savedTypeName: String { "inotify.File" }
    override public class var notSaved: Set<String> { super.notSaved.union(["state", "queue", "loadedWatches"]) }

    struct Contents {
        var watches: [Int32: InotifyWatch] = [:]
        var events: [InotifyEvent] = []
        /// Watch descriptors go up and are not reused soon (idr_alloc_cyclic from 1).
        var nextDescriptor: Int32 = 1
    }

    /// Lock order (see VFSLock): taken while the VFS lock may be held (events
    /// come from path operations); takes only inodes' `inotifyWatches`.
    /// Readers are woken after it is let go.
    private let state = Mutex(Contents())
    /// Host-only: readers and pollers; they register again after a load.
    private let queue = WaitQueue()
    /// The watches as loaded, indexed in `afterLoad` (their descriptors are
    /// not loaded yet when this object is).
    private var loadedWatches: [InotifyWatch] = []

    public required init() { super.init() }

    override init(flags: UInt32) { super.init(flags: flags) }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let state = state.withLock { $0 }
        try sink.save("watches", Array(state.watches.values).sorted { $0.descriptor < $1.descriptor })
        try sink.save("events", state.events)
        try sink.save("nextDescriptor", state.nextDescriptor)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let watches: [InotifyWatch] = try source.load("watches")
        let events: [InotifyEvent] = try source.load("events")
        let next: Int32 = try source.load("nextDescriptor")
        try ImageValidation.require(next >= 1, field: "nextDescriptor", "watch descriptor \(next) below 1")
        try ImageValidation.require(events.count <= InotifyABI.maximumQueuedEvents + 1, field: "events",
                                    "\(events.count) queued events")
        loadedWatches = watches
        state.withLock { state in
            state.events = events
            state.nextDescriptor = next
        }
    }

    /// Each watch goes back in the table and on its inode's list.
    override public func afterLoad() throws {
        try super.afterLoad()
        var watches: [Int32: InotifyWatch] = [:]
        for watch in loadedWatches {
            try ImageValidation.require(watches.updateValue(watch, forKey: watch.descriptor) == nil && watch.owner === self,
                                        field: "watches", "watch descriptor \(watch.descriptor) twice or of another instance")
        }
        let next = state.withLock { $0.nextDescriptor }
        try ImageValidation.require(watches.keys.allSatisfy { $0 < next }, field: "nextDescriptor",
                                    "a watch descriptor at or past \(next)")
        state.withLock { $0.watches = watches }
        for watch in loadedWatches { Inotify.attach(watch) }
        loadedWatches = []
    }

    // MARK: Watches

    /// inotify_update_watch: the watch on `inode` gets `mask` (or more with
    /// IN_MASK_ADD; EEXIST with IN_MASK_CREATE), or a new one is made.
    func addWatch(on inode: Inode, mask: UInt32) throws(SyscallError) -> Int32 {
        try state.withLock { state throws(SyscallError) -> Int32 in
            if let existing = state.watches.values.first(where: { $0.inode === inode }) {
                if mask & InotifyABI.IN_MASK_CREATE != 0 { throw .eexist }
                let kept = mask & InotifyABI.watchBits
                existing.mask = mask & InotifyABI.IN_MASK_ADD != 0 ? existing.mask | kept : kept
                return existing.descriptor
            }
            let descriptor = state.nextDescriptor
            guard descriptor < Int32.max else { throw .enospc }
            state.nextDescriptor = descriptor + 1
            let watch = InotifyWatch(owner: self, descriptor: descriptor, mask: mask & InotifyABI.watchBits,
                                     inode: inode)
            state.watches[descriptor] = watch
            Inotify.attach(watch)
            return descriptor
        }
    }

    /// inotify_rm_watch: EINVAL for an unknown descriptor; queues IN_IGNORED.
    func removeWatch(_ descriptor: Int32) throws(SyscallError) {
        try state.withLock { state throws(SyscallError) in
            guard let watch = state.watches[descriptor] else { throw .einval }
            drop(watch, from: &state)
        }
        queue.notify(.readable)
    }

    /// Queues `mask` for `watch` if it still wants it; a one-shot watch then goes.
    func deliver(_ watch: InotifyWatch, mask: UInt32, cookie: UInt32, name: String) {
        let queued = state.withLock { state -> Bool in
            guard state.watches[watch.descriptor] === watch else { return false }
            if mask & InotifyABI.IN_IGNORED != 0 {
                drop(watch, from: &state)
                return true
            }
            guard watch.mask & mask & InotifyABI.IN_ALL_EVENTS != 0 else { return false }
            let event = InotifyEvent(descriptor: watch.descriptor, mask: mask & (InotifyABI.IN_ALL_EVENTS | InotifyABI.IN_ISDIR),
                                     cookie: cookie, name: name)
            Self.enqueue(event, in: &state)
            if watch.mask & InotifyABI.IN_ONESHOT != 0 { drop(watch, from: &state) }
            return true
        }
        if queued { queue.notify(.readable) }
    }

    /// Takes the watch off its inode and queues its IN_IGNORED.
    private func drop(_ watch: InotifyWatch, from state: inout Contents) {
        state.watches[watch.descriptor] = nil
        Inotify.detach(watch)
        Self.enqueue(InotifyEvent(descriptor: watch.descriptor, mask: InotifyABI.IN_IGNORED, cookie: 0, name: ""),
                     in: &state)
    }

    /// fsnotify_insert_event: past max_queued_events one IN_Q_OVERFLOW ends
    /// the queue; an event equal to the last one queued is merged into it.
    private static func enqueue(_ event: InotifyEvent, in state: inout Contents) {
        if state.events.count >= InotifyABI.maximumQueuedEvents {
            if state.events.last?.mask != InotifyABI.IN_Q_OVERFLOW {
                state.events.append(InotifyEvent(descriptor: -1, mask: InotifyABI.IN_Q_OVERFLOW, cookie: 0, name: ""))
            }
            return
        }
        if let last = state.events.last, last.mask & InotifyABI.IN_IGNORED == 0, last.mask == event.mask,
           last.descriptor == event.descriptor, last.name == event.name, last.cookie == event.cookie { return }
        state.events.append(event)
    }

    /// The instance's last descriptor closed: its watches leave their inodes.
    override public func released() {
        let watches = state.withLock { state in
            defer { state.watches = [:] }
            return Array(state.watches.values)
        }
        for watch in watches { Inotify.detach(watch) }
    }

    // MARK: Reading

    /// inotify_read: as many whole events as fit, EINVAL if the first does
    /// not; blocks while none is queued unless non-blocking (EAGAIN).
    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        let take = { () -> Result<[UInt8], SyscallError>? in
            self.state.withLock { state -> Result<[UInt8], SyscallError>? in
                guard let first = state.events.first else { return nil }
                guard first.size <= count else { return .failure(.einval) }
                var bytes: [UInt8] = []
                var taken = 0
                for event in state.events {
                    guard bytes.count + event.size <= count else { break }
                    bytes += event.encoded
                    taken += 1
                }
                state.events.removeFirst(taken)
                return .success(bytes)
            }
        }
        guard let waiter, !isNonBlocking else {
            guard let result = take() else { throw .eagain }
            return try result.get()
        }
        return try waiter.wait(on: queue, for: PollEvents.readable, until: take).get()
    }

    /// FIONREAD: the bytes of every queued event.
    override public func readableByteCount() throws(SyscallError) -> Int {
        state.withLock { $0.events.reduce(0) { $0 + $1.size } }
    }

    override public func readiness(for mask: PollEvents) -> PollEvents {
        let ready: PollEvents = state.withLock { $0.events.isEmpty } ? [] : .readable
        return ready.intersection(mask.union(.unmaskable))
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { queue.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { queue.unregister(entry) }
}

/// One watch: an instance's interest in one inode.
public final class InotifyWatch: Savable, @unchecked Sendable { // `mask` is guarded by the owner's state lock
    public static let savedTypeName = "inotify.Watch"

    var owner = InotifyFile()
    var descriptor: Int32 = 0
    var mask: UInt32 = 0
    var inode = Inode()

    public required init() {}

    init(owner: InotifyFile, descriptor: Int32, mask: UInt32, inode: Inode) {
        self.owner = owner
        self.descriptor = descriptor
        self.mask = mask
        self.inode = inode
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("owner", owner)
        try sink.save("descriptor", descriptor)
        try sink.save("mask", mask)
        try sink.save("inode", inode)
    }

    public func load(from source: inout LoadSource) throws {
        owner = try source.load("owner")
        descriptor = try source.load("descriptor")
        mask = try source.load("mask")
        inode = try source.load("inode")
        try ImageValidation.require(descriptor >= 1, field: "descriptor", "watch descriptor \(descriptor)")
    }
}

/// A queued struct inotify_event.
struct InotifyEvent: SavableStruct, Sendable {
    static let savedTypeName = "inotify.Event"
    var descriptor: Int32
    var mask: UInt32
    var cookie: UInt32
    var name: String

    init(descriptor: Int32, mask: UInt32, cookie: UInt32, name: String) {
        self.descriptor = descriptor
        self.mask = mask
        self.cookie = cookie
        self.name = name
    }

    /// The name with its NUL, padded to a multiple of the header's size.
    private var nameLength: Int {
        let count = name.utf8.count
        guard count > 0 else { return 0 }
        let unit = InotifyABI.eventHeaderSize
        return (count + 1 + unit - 1) / unit * unit
    }

    var size: Int { InotifyABI.eventHeaderSize + nameLength }

    var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: descriptor, toByteOffset: 0, as: Int32.self)
            raw.storeBytes(of: mask, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: cookie, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: UInt32(truncatingIfNeeded: nameLength), toByteOffset: 12, as: UInt32.self)
        }
        bytes.replaceSubrange(InotifyABI.eventHeaderSize..<(InotifyABI.eventHeaderSize + name.utf8.count),
                              with: Array(name.utf8))
        return bytes
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("descriptor", descriptor)
        try sink.save("mask", mask)
        try sink.save("cookie", cookie)
        try sink.save("name", name)
    }

    init(from source: inout LoadSource) throws {
        descriptor = try source.load("descriptor")
        mask = try source.load("mask")
        cookie = try source.load("cookie")
        name = try source.load("name")
        try ImageValidation.require(name.utf8.count <= LinuxFile.nameMax, field: "name", "event name too long")
    }
}

/// How the VFS reports a change (include/linux/fsnotify.h): events on an
/// inode go to its watches, and events on a child also to its parent
/// directory's watches, with the child's name, first.
enum Inotify {
    /// The watches on inodes, of every instance: with none (the common
    /// case) the I/O paths' notifications return at once, taking no lock.
    private static let liveWatches = Atomic<Int>(0)

    /// Puts `watch` on its inode.
    static func attach(_ watch: InotifyWatch) {
        watch.inode.inotifyWatches.withLock { $0.append(watch) }
        liveWatches.add(1, ordering: .relaxed)
    }

    /// Takes `watch` off its inode, if it is still there.
    static func detach(_ watch: InotifyWatch) {
        let removed = watch.inode.inotifyWatches.withLock { watches -> Int in
            let before = watches.count
            watches.removeAll { $0 === watch }
            return before - watches.count
        }
        if removed > 0 { liveWatches.subtract(removed, ordering: .relaxed) }
    }

    private static var noWatches: Bool { liveWatches.load(ordering: .relaxed) == 0 }

    /// An event on the file `dentry` names (fsnotify_parent): to the parent's
    /// watches with the name, then the file's own. The parent and name are
    /// read under the VFS lock, since a rename may change them meanwhile;
    /// no caller holds it (the I/O paths and close run outside it).
    static func notify(_ mask: UInt32, on dentry: Dentry) {
        if noWatches { return }
        let (inode, parent, name) = VFSLock.shared.withLock { _ in
            (dentry.inode, dentry.parent.flatMap { $0 === dentry ? nil : $0.inode }, dentry.name)
        }
        let flagged = inode.isDirectory ? mask | InotifyABI.IN_ISDIR : mask
        if let parent { notify(flagged, inode: parent, name: name) }
        notify(flagged, inode: inode)
    }

    /// An event in `directory` about its entry `name` (create, delete, moves).
    static func notify(_ mask: UInt32, in directory: Dentry, name: String, isDirectory: Bool, cookie: UInt32 = 0) {
        notify(isDirectory ? mask | InotifyABI.IN_ISDIR : mask, inode: directory.inode, name: name, cookie: cookie)
    }

    /// An event on the inode alone (IN_DELETE_SELF, IN_MOVE_SELF, a link count's IN_ATTRIB).
    static func notify(_ mask: UInt32, inode: Inode, name: String = "", cookie: UInt32 = 0) {
        if noWatches { return }
        let watches = inode.inotifyWatches.withLock { $0 }
        for watch in watches { watch.owner.deliver(watch, mask: mask, cookie: cookie, name: name) }
    }

    /// fsnotify_access: a read through an open file.
    static func accessed(_ file: FileDescription) {
        if let dentry = file.location?.dentry { notify(InotifyABI.IN_ACCESS, on: dentry) }
    }

    /// fsnotify_modify: a write, truncate or fallocate through an open file.
    static func modified(_ file: FileDescription) {
        if let dentry = file.location?.dentry { notify(InotifyABI.IN_MODIFY, on: dentry) }
    }

    /// A link or an open description of `inode` went: once neither is
    /// left (dentry_unlink_inode's fsnotify_inoderemove), IN_DELETE_SELF,
    /// then every watch on it ends with IN_IGNORED.
    static func unlinked(_ inode: Inode) {
        if noWatches { return }
        guard inode.inotifyWatches.withLock({ !$0.isEmpty }),
              inode.openDescriptions.load(ordering: .relaxed) <= 0 else { return }
        // A host file's count, or a file that cannot be asked any more.
        if let attributes = try? inode.attributes(), attributes.linkCount > 0 { return }
        notify(InotifyABI.IN_DELETE_SELF, inode: inode)
        notify(InotifyABI.IN_IGNORED, inode: inode)
    }

    /// fsnotify_change: the events a setattr makes.
    static func mask(of change: AttributeChange) -> UInt32 {
        var mask: UInt32 = 0
        if change.uid != nil || change.gid != nil || change.mode != nil { mask |= InotifyABI.IN_ATTRIB }
        if change.size != nil { mask |= InotifyABI.IN_MODIFY }
        switch (change.accessTime != nil, change.modificationTime != nil) {
        case (true, true): mask |= InotifyABI.IN_ATTRIB
        case (true, false): mask |= InotifyABI.IN_ACCESS
        case (false, true): mask |= InotifyABI.IN_MODIFY
        case (false, false): break
        }
        return mask
    }
}

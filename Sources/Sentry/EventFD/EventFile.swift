import State

/// An eventfd (fs/eventfd.c): a 64-bit counter. A write adds to it, blocking
/// while the sum would pass ULLONG_MAX - 1; a read takes it all (or 1 with
/// EFD_SEMAPHORE), blocking while it is 0. Readable while not 0, writable
/// while 1 more fits. The counter is saved; waiters are not.
public final class EventFile: FileDescription, @unchecked Sendable { // `counter` and `isSemaphore` are guarded by FileDescription.lock
    override public class var savedTypeName: String { "eventfd.File" }
    override public class var notSaved: Set<String> { super.notSaved.union(["queue"]) }

    var counter: UInt64 = 0
    var isSemaphore = false
    /// Host-only: readers, writers and pollers; they register again after a load.
    let queue = WaitQueue()

    public required init() { super.init() }

    init(initialValue: UInt64, semaphore: Bool, flags: UInt32) {
        counter = initialValue
        isSemaphore = semaphore
        super.init(location: nil, flags: LinuxFile.readWrite | flags)
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let (counter, semaphore) = lock.withLock { _ in (self.counter, isSemaphore) }
        try sink.save("counter", counter)
        try sink.save("isSemaphore", semaphore)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        counter = try source.load("counter")
        isSemaphore = try source.load("isSemaphore")
        try ImageValidation.require(counter <= EpollABI.eventCounterMaximum, field: "counter",
                                    "eventfd counter \(counter) above ULLONG_MAX - 1")
    }

    override public var isSeekable: Bool { false }

    /// eventfd_read: EINVAL below 8 bytes.
    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        guard count >= MemoryLayout<UInt64>.size else { throw .einval }
        let value = try waiting(for: PollEvents.readable, waiter: waiter) { () -> UInt64? in
            guard counter > 0 else { return nil }
            let taken = isSemaphore ? 1 : counter
            counter -= taken
            return taken
        }
        queue.notify(.writable)
        return withUnsafeBytes(of: value) { Array($0) }
    }

    /// eventfd_write: EINVAL below 8 bytes or for ULLONG_MAX.
    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        guard position == nil else { throw .espipe }
        guard bytes.count >= MemoryLayout<UInt64>.size else { throw .einval }
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        guard value != .max else { throw .einval }
        _ = try waiting(for: PollEvents.writable, waiter: waiter) { () -> Bool? in
            guard EpollABI.eventCounterMaximum - counter >= value else { return nil }
            counter += value
            return true
        }
        if value > 0 { queue.notify(.readable) }
        return MemoryLayout<UInt64>.size
    }

    /// Runs `attempt` under the lock until it gives a value; between tries
    /// blocks on the queue for `events` (EAGAIN if non-blocking).
    private func waiting<T>(for events: PollEvents, waiter: Waiter?,
                            _ attempt: () -> T?) throws(SyscallError) -> T {
        var entry: WaitEntry?
        defer { if let entry { queue.unregister(entry) } }
        while true {
            waiter?.reset()
            if let value = lock.withLock({ _ in attempt() }) { return value }
            guard let waiter, !isNonBlocking else { throw .eagain }
            if entry == nil {
                let registered = waiter.entry(for: events)
                queue.register(registered)
                entry = registered
                continue
            }
            try waiter.block()
        }
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .espipe }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        var attributes = FileAttributes()
        attributes.mode = SignalFile.anonymousInodeMode
        return attributes
    }

    /// eventfd_poll.
    override public func readiness(for mask: PollEvents) -> PollEvents {
        let counter = lock.withLock { _ in self.counter }
        var ready: PollEvents = []
        if counter > 0 { ready.formUnion(.readable) }
        if counter < EpollABI.eventCounterMaximum { ready.formUnion(.writable) }
        return ready.intersection(mask.union(.unmaskable))
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { queue.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { queue.unregister(entry) }
}

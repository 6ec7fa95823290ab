import State
import Synchronization

/// A pipe's buffer and its two ends, as fs/pipe.c: 64 KiB by default, writes
/// of at most PIPE_BUF bytes are atomic, EOF once every writer is closed,
/// EPIPE once every reader is. Buffered bytes are saved; waiters are not (a
/// task re-runs its syscall and waits again, an epoll instance re-registers
/// its items after a load).
public final class Pipe: Savable, @unchecked Sendable { // state guarded by `lock`
    public static let savedTypeName = "pipe.Pipe"
    public static let notSaved: Set<String> = [
        "lock", // a lock
        "head", // bytes are saved from head on and load at 0
        "queue", // host-only: waiters register again after a load
        "readerOpens", // no FIFO open waits for its partner at a checkpoint
        "writerOpens", // no FIFO open waits for its partner at a checkpoint
        "openQueue", // host-only: waiters, none at a checkpoint
    ]

    /// /proc/sys/fs/pipe-max-size's default: the most an unprivileged F_SETPIPE_SZ may ask.
    public static let maximumCapacity = 1 << 20

    /// Calls nothing: the queues are notified after it is let go (see VFSLock).
    /// Two pipes' locks are held together only by `transfer`, the lower object first.
    private let lock = Mutex(())
    /// Bytes not yet read start at `head`.
    private var bytes: [UInt8] = []
    private var head = 0
    private var capacity = LinuxFile.pipeDefaultCapacity
    private var readers = 0
    private var writers = 0
    public private(set) var inodeNumber: UInt64 = 0
    public private(set) var creationTime = FileTime(seconds: 0, nanoseconds: 0)
    /// Where readers, writers, pollers and epoll items wait: bytes arriving
    /// announce `readable`, room `writable`, an end opening or closing everything.
    let queue = WaitQueue()
    /// Opens of each end so far (Linux's r_counter, w_counter), for a FIFO open
    /// waiting for its partner; not saved: at a checkpoint no open is waiting.
    private var readerOpens = 0
    private var writerOpens = 0
    private let openQueue = WaitQueue()

    /// A leaf.
    private static let inodeCounter = Mutex<UInt64>(1)

    public required init() {}

    /// A new pipe and its read and write ends (pipe2's `flags`: O_NONBLOCK, O_DIRECT).
    public static func makePair(flags: UInt32 = 0) -> (reader: PipeFile, writer: PipeFile) {
        let pipe = Pipe()
        pipe.inodeNumber = inodeCounter.withLock { next in
            defer { next += 1 }
            return next
        }
        pipe.creationTime = FileTime.now()
        pipe.readers = 1
        pipe.writers = 1
        let status = flags & (LinuxFile.nonBlocking | LinuxFile.direct)
        return (PipeFile(pipe: pipe, isReadEnd: true, flags: LinuxFile.readOnly | status),
                PipeFile(pipe: pipe, isReadEnd: false, flags: LinuxFile.writeOnly | status))
    }

    /// The pipe of a FIFO: made with no end open; `openEnds` adds them.
    public static func makeNamed() -> Pipe {
        let pipe = Pipe()
        pipe.inodeNumber = inodeCounter.withLock { next in
            defer { next += 1 }
            return next
        }
        pipe.creationTime = FileTime.now()
        return pipe
    }

    public func save(to sink: inout SaveSink) throws {
        let (pending, capacity, readers, writers) = lock.withLock { _ in
            (Array(bytes[head...]), self.capacity, self.readers, self.writers)
        }
        try sink.save("bytes", pending)
        try sink.save("capacity", capacity)
        try sink.save("readers", readers)
        try sink.save("writers", writers)
        try sink.save("inodeNumber", inodeNumber)
        try sink.save("creationTime", creationTime)
    }

    public func load(from source: inout LoadSource) throws {
        let pending: [UInt8] = try source.load("bytes")
        let capacity: Int = try source.load("capacity")
        let readers: Int = try source.load("readers")
        let writers: Int = try source.load("writers")
        // A privileged F_SETPIPE_SZ goes past maximumCapacity, up to 2 GiB.
        guard capacity >= 4096, capacity <= 1 << 31, pending.count <= capacity,
              readers >= 0, writers >= 0 else {
            throw StateError.invalidValue("\(pending.count) bytes, capacity \(capacity), "
                + "\(readers) readers, \(writers) writers", field: "capacity")
        }
        inodeNumber = try source.load("inodeNumber")
        creationTime = try source.load("creationTime")
        lock.withLock { _ in
            bytes = pending
            head = 0
            self.capacity = capacity
            self.readers = readers
            self.writers = writers
        }
        let loaded = inodeNumber
        Self.inodeCounter.withLock { $0 = max($0, loaded == .max ? loaded : loaded + 1) }
    }

    /// Bytes waiting to be read (FIONREAD).
    public var availableBytes: Int { lock.withLock { _ in bytes.count - head } }

    public var bufferCapacity: Int { lock.withLock { _ in capacity } }

    /// F_SETPIPE_SZ: rounds up to a power of two pages; EBUSY if the bytes
    /// already buffered would not fit.
    public func setCapacity(_ requested: Int, privileged: Bool) throws(SyscallError) -> Int {
        guard requested >= 0, requested <= Int(Int32.max) else { throw .einval }
        var size = 4096
        while size < requested { size <<= 1 }
        if size > Self.maximumCapacity, !privileged { throw .eperm }
        try lock.withLock { _ throws(SyscallError) in
            guard bytes.count - head <= size else { throw .ebusy }
            capacity = size
        }
        queue.notify(.writable)
        return size
    }

    // MARK: Reading and writing

    /// Reads up to `count` bytes: blocks on an empty pipe with writers, returns
    /// [] at EOF, EAGAIN when non-blocking.
    public func read(count: Int, nonBlocking: Bool, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard count > 0 else { return [] }
        var entry: WaitEntry?
        defer { if let entry { queue.unregister(entry) } }
        while true {
            waiter?.reset()
            let result = lock.withLock { _ -> [UInt8]? in
                let available = bytes.count - head
                if available > 0 {
                    let taken = min(count, available)
                    let out = Array(bytes[head..<(head + taken)])
                    head += taken
                    compact()
                    return out
                }
                return writers == 0 ? [] : nil
            }
            if let result {
                if !result.isEmpty { queue.notify(.writable) }
                return result
            }
            guard let waiter, !nonBlocking else { throw .eagain }
            if entry == nil {
                // Registered, then looked at again: a write in between is not missed.
                let registered = waiter.entry(for: PollEvents.readable.union(.hangUp))
                queue.register(registered)
                entry = registered
                continue
            }
            try waiter.block()
        }
    }

    /// Writes `data`: atomically when at most PIPE_BUF bytes, else as space
    /// allows. EPIPE (the caller sends SIGPIPE) when no reader is left; a
    /// partial count when interrupted or non-blocking after some progress.
    /// The checkpoint's pause is no such interruption: the count is kept in
    /// the task and the call restarts, its re-entry writing only the rest.
    public func write(_ data: [UInt8], nonBlocking: Bool, waiter: Waiter?) throws(SyscallError) -> Int {
        guard !data.isEmpty else { return 0 }
        let atomic = data.count <= LinuxFile.pipeBufferAtomicSize
        // Taken whatever the call is now (another thread may have set O_NONBLOCK meanwhile): the count is owed.
        var written = min(Task.current?.takeReenteredWritten() ?? 0, data.count)
        var entry: WaitEntry?
        defer { if let entry { queue.unregister(entry) } }
        while true {
            waiter?.reset()
            let outcome = lock.withLock { _ -> Result<Int, SyscallError> in
                guard readers > 0 else { return .failure(.epipe) }
                let free = capacity - (bytes.count - head)
                let remaining = data.count - written
                guard free >= remaining || (!atomic && free > 0) else { return .success(0) }
                let chunk = min(free, remaining)
                bytes.append(contentsOf: data[written..<(written + chunk)])
                return .success(chunk)
            }
            switch outcome {
            case .failure(let error):
                if written > 0 { return written }
                throw error
            case .success(let chunk) where chunk > 0:
                written += chunk
                queue.notify(.readable)
                if written == data.count { return written }
                continue
            case .success:
                break
            }
            guard let waiter, !nonBlocking else {
                if written > 0 { return written }
                throw .eagain
            }
            if entry == nil {
                let registered = waiter.entry(for: PollEvents.writable.union(.error))
                queue.register(registered)
                entry = registered
                continue
            }
            do {
                try waiter.block()
            } catch {
                if written > 0, Task.current?.keepsWritten(written, interruptedBy: error) != true { return written }
                throw error
            }
        }
    }

    // MARK: Splicing (splice, tee, vmsplice)

    /// ipipe_prep: waits until bytes are buffered (true) or every writer is
    /// gone with none (false: end of file); EAGAIN when non-blocking.
    func waitForData(nonBlocking: Bool, waiter: Waiter?) throws(SyscallError) -> Bool {
        let look = { () -> Bool? in
            self.lock.withLock { _ in self.bytes.count > self.head ? true : (self.writers == 0 ? false : nil) }
        }
        if let ready = look() { return ready }
        guard let waiter, !nonBlocking else { throw .eagain }
        return try waiter.wait(on: queue, for: PollEvents.readable.union(.hangUp), until: look)
    }

    /// wait_for_space: waits until there is room; EPIPE (the caller sends
    /// SIGPIPE) with no reader, EAGAIN when non-blocking.
    func waitForRoom(nonBlocking: Bool, waiter: Waiter?) throws(SyscallError) {
        let look = { () -> Result<Void, SyscallError>? in
            self.lock.withLock { _ in
                if self.readers == 0 { return .failure(.epipe) }
                return self.capacity > self.bytes.count - self.head ? .success(()) : nil
            }
        }
        if let ready = look() { return try ready.get() }
        guard let waiter, !nonBlocking else { throw .eagain }
        try waiter.wait(on: queue, for: PollEvents.writable.union(.error), until: look).get()
    }

    /// Returns bytes taken by `read` that their destination did not take
    /// (splice into a file or socket) to the front of the pipe, so none is lost.
    func putBack(_ data: ArraySlice<UInt8>) {
        guard !data.isEmpty else { return }
        lock.withLock { _ in
            if head >= data.count {
                head -= data.count
                bytes.replaceSubrange(head..<(head + data.count), with: data)
            } else {
                bytes = Array(data) + bytes[head...]
                head = 0
            }
        }
        queue.notify(.readable)
    }

    /// Appends all of `data`, over the capacity if another writer filled the
    /// pipe meanwhile: for splice from a source that cannot take bytes back
    /// (a socket, a character device). EPIPE with no reader left.
    func fill(_ data: [UInt8]) throws(SyscallError) -> Int {
        guard !data.isEmpty else { return 0 }
        try lock.withLock { _ throws(SyscallError) in
            guard readers > 0 else { throw .epipe }
            bytes.append(contentsOf: data)
        }
        queue.notify(.readable)
        return data.count
    }

    /// The bytes that fit now.
    var room: Int { lock.withLock { _ in max(0, capacity - (bytes.count - head)) } }

    /// splice_pipe_to_pipe and link_pipe (tee, `consume` false): moves or
    /// copies up to `count` buffered bytes into `destination`, as many as
    /// fit, without waiting. Takes both pipes' locks, the lower object first.
    static func transfer(from source: Pipe, to destination: Pipe, count: Int, consume: Bool) -> Int {
        let sourceFirst = ObjectIdentifier(source) < ObjectIdentifier(destination)
        let (first, second) = sourceFirst ? (source, destination) : (destination, source)
        let moved = first.lock.withLock { _ in
            second.lock.withLock { _ -> Int in
                let taken = min(count, source.bytes.count - source.head,
                                destination.capacity - (destination.bytes.count - destination.head))
                guard taken > 0 else { return 0 }
                destination.bytes.append(contentsOf: source.bytes[source.head..<(source.head + taken)])
                if consume {
                    source.head += taken
                    source.compact()
                }
                return taken
            }
        }
        if moved > 0 {
            if consume { source.queue.notify(.writable) }
            destination.queue.notify(.readable)
        }
        return moved
    }

    // MARK: Readiness

    /// pipe_poll: readable with bytes buffered, hung up once every writer is
    /// gone (for a FIFO reader that opened non-blocking without a writer,
    /// only once a writer has opened since: `writerOpensSeen`); writable
    /// with room left, in error once every reader is gone.
    func readiness(reading: Bool, writing: Bool, writerOpensSeen: Int? = nil) -> PollEvents {
        lock.withLock { _ in
            var ready: PollEvents = []
            let buffered = bytes.count - head
            if reading {
                if buffered > 0 { ready.formUnion(.readable) }
                if writers == 0, writerOpensSeen.map({ $0 != writerOpens }) ?? true { ready.insert(.hangUp) }
            }
            if writing {
                if buffered < capacity { ready.formUnion(.writable) }
                if readers == 0 { ready.insert(.error) }
            }
            return ready
        }
    }

    /// One end's last description closed. When no end is left open the
    /// buffered bytes go, as Linux frees a FIFO's pipe at its last close.
    func endClosed(readEnd: Bool) {
        lock.withLock { _ in
            if readEnd {
                readers = max(0, readers - 1)
            } else {
                writers = max(0, writers - 1)
            }
            if readers == 0, writers == 0 {
                bytes = []
                head = 0
            }
        }
        queue.notify(.all)
    }

    // MARK: FIFO opens (fs/pipe.c fifo_open)

    /// Counts a new description of a FIFO with the ends it has and wakes
    /// the opens waiting for a partner. ENXIO for a non-blocking write-only
    /// open without a reader, before anything is counted. Returns, for a
    /// non-blocking read-only open without a writer, the writer opens so
    /// far (fifo_open's f_version: no hang-up until a writer has come).
    func openEnds(read: Bool, write: Bool, nonBlocking: Bool) throws(SyscallError) -> Int? {
        let seen = try lock.withLock { _ throws(SyscallError) -> Int? in
            if write, !read, nonBlocking, readers == 0 { throw .enxio }
            if read {
                readers += 1
                readerOpens += 1
            }
            if write {
                writers += 1
                writerOpens += 1
            }
            return read && !write && nonBlocking && writers == 0 ? writerOpens : nil
        }
        openQueue.notify(.all)
        queue.notify(.all)
        return seen
    }

    /// Whether a writer has opened since `seen` writer opens.
    func writerOpened(since seen: Int) -> Bool { lock.withLock { _ in writerOpens != seen } }

    /// A blocking read-only (write-only) open of a FIFO waits until a writer
    /// (reader) is there or has come and gone since (wait_for_partner). An
    /// interrupted wait throws ERESTARTSYS; the open's release uncounts the end.
    func waitForPartner(ofReadEnd readEnd: Bool, waiter: Waiter) throws(SyscallError) {
        let start = lock.withLock { _ in readEnd ? writerOpens : readerOpens }
        let entry = waiter.entry(for: .all)
        openQueue.register(entry)
        defer { openQueue.unregister(entry) }
        while true {
            waiter.reset()
            let present = lock.withLock { _ -> Bool in
                let (count, opens) = readEnd ? (writers, writerOpens) : (readers, readerOpens)
                return count > 0 || opens != start
            }
            if present { return }
            try waiter.block()
        }
    }

    /// Drops consumed bytes once they are most of the buffer (lock held).
    private func compact() {
        if head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 4096, head * 2 > bytes.count {
            bytes.removeFirst(head)
            head = 0
        }
    }
}

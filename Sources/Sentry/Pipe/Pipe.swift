import State
import Synchronization

/// A pipe's buffer and its two ends, as fs/pipe.c: 64 KiB by default, writes
/// of at most PIPE_BUF bytes are atomic, EOF once every writer is closed,
/// EPIPE once every reader is. Buffered bytes are saved; waiters are not (at a
/// checkpoint no task is left waiting).
public final class Pipe: Savable, @unchecked Sendable { // state guarded by `lock`
    public static let savedTypeName = "pipe.Pipe"

    /// /proc/sys/fs/pipe-max-size's default: the most an unprivileged F_SETPIPE_SZ may ask.
    public static let maximumCapacity = 1 << 20

    /// Takes only the wait queues' locks (notify); see VFSLock for the order.
    private let lock = Mutex(())
    /// Bytes not yet read start at `head`.
    private var bytes: [UInt8] = []
    private var head = 0
    private var capacity = LinuxFile.pipeDefaultCapacity
    private var readers = 0
    private var writers = 0
    public private(set) var inodeNumber: UInt64 = 0
    public private(set) var creationTime = FileTime(seconds: 0, nanoseconds: 0)
    private let readQueue = WaitQueue()
    private let writeQueue = WaitQueue()

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
            throw StateError.invalidValue("pipe with \(pending.count) bytes, capacity \(capacity), "
                + "\(readers) readers, \(writers) writers")
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
        return try lock.withLock { _ throws(SyscallError) -> Int in
            guard bytes.count - head <= size else { throw .ebusy }
            capacity = size
            writeQueue.notifyAll()
            return size
        }
    }

    // MARK: Reading and writing

    /// Reads up to `count` bytes: blocks on an empty pipe with writers, returns
    /// [] at EOF, EAGAIN when non-blocking.
    public func read(count: Int, nonBlocking: Bool, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard count > 0 else { return [] }
        while true {
            let result = lock.withLock { _ -> [UInt8]? in
                let available = bytes.count - head
                if available > 0 {
                    let taken = min(count, available)
                    let out = Array(bytes[head..<(head + taken)])
                    head += taken
                    compact()
                    writeQueue.notifyAll()
                    return out
                }
                if writers == 0 { return [] }
                if let waiter, !nonBlocking { readQueue.add(waiter) }
                return nil
            }
            if let result { return result }
            guard let waiter, !nonBlocking else { throw .eagain }
            defer { readQueue.remove(waiter) }
            try waiter.wait()
        }
    }

    /// Writes `data`: atomically when at most PIPE_BUF bytes, else as space
    /// allows. EPIPE (the caller sends SIGPIPE) when no reader is left; a
    /// partial count when interrupted or non-blocking after some progress.
    public func write(_ data: [UInt8], nonBlocking: Bool, waiter: Waiter?) throws(SyscallError) -> Int {
        guard !data.isEmpty else { return 0 }
        let atomic = data.count <= LinuxFile.pipeBufferAtomicSize
        var written = 0
        while true {
            let outcome = lock.withLock { _ -> Result<Bool, SyscallError> in
                guard readers > 0 else { return .failure(.epipe) }
                let free = capacity - (bytes.count - head)
                let remaining = data.count - written
                if free >= remaining || (!atomic && free > 0) {
                    let chunk = min(free, remaining)
                    bytes.append(contentsOf: data[written..<(written + chunk)])
                    written += chunk
                    readQueue.notifyAll()
                    if written == data.count { return .success(true) }
                }
                if let waiter, !nonBlocking { writeQueue.add(waiter) }
                return .success(false)
            }
            switch outcome {
            case .failure(let error):
                if written > 0 { return written }
                throw error
            case .success(true):
                return written
            case .success(false):
                guard let waiter, !nonBlocking else {
                    if written > 0 { return written }
                    throw .eagain
                }
                defer { writeQueue.remove(waiter) }
                do {
                    try waiter.wait()
                } catch {
                    if written > 0 { return written }
                    throw error
                }
            }
        }
    }

    /// One end's last description closed.
    func endClosed(readEnd: Bool) {
        lock.withLock { _ in
            if readEnd {
                readers = max(0, readers - 1)
            } else {
                writers = max(0, writers - 1)
            }
        }
        readQueue.notifyAll()
        writeQueue.notifyAll()
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

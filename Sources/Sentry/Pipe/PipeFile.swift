import State

/// One end of a pipe, as pipe(2) returns it, or a description of a FIFO
/// (which O_RDWR makes both ends at once).
public final class PipeFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "pipe.File" }
    override public class var savedAs: [String: String] {
        super.savedAs.merging(["writerOpensSeen": "awaitingWriter"]) { $1 }
    }
    override public class var notSaved: Set<String> {
        super.notSaved.union(["waitsForPartner"])
    }

    public private(set) var pipe = Pipe()
    public private(set) var isReadEnd = true
    public private(set) var isWriteEnd = false
    /// A FIFO reader opened non-blocking without a writer: the pipe's writer
    /// opens then, so poll reports no hang-up until a writer has come.
    /// Saved as whether it still waits (the pipe's counts start over at a load).
    var writerOpensSeen: Int?
    /// A blocking open of one end waits for the other: a FIFO's, not an
    /// anonymous pipe's opened again through /proc/self/fd. Only the open
    /// looks at it, so it is not saved.
    var waitsForPartner = false

    public required init() { super.init() }

    init(pipe: Pipe, isReadEnd: Bool, flags: UInt32) {
        self.pipe = pipe
        self.isReadEnd = isReadEnd
        self.isWriteEnd = !isReadEnd
        super.init(location: nil, flags: flags)
    }

    /// A FIFO's description at `location`, its ends already counted by the pipe.
    init(fifo pipe: Pipe, location: VirtualPath, reads: Bool, writes: Bool, flags: UInt32) {
        self.pipe = pipe
        self.isReadEnd = reads
        self.isWriteEnd = writes
        super.init(location: location, flags: flags)
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("pipe", pipe)
        try sink.save("isReadEnd", isReadEnd)
        try sink.save("isWriteEnd", isWriteEnd)
        try sink.save("awaitingWriter", writerOpensSeen.map { !pipe.writerOpened(since: $0) } ?? false)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        pipe = try source.load("pipe")
        isReadEnd = try source.load("isReadEnd")
        isWriteEnd = try source.load("isWriteEnd", default: !isReadEnd)
        // A loaded pipe has seen 0 writer opens.
        writerOpensSeen = try source.load("awaitingWriter", default: false) ? 0 : nil
    }

    /// A blocking FIFO open waits for its partner end.
    override public func waitUntilOpen(waiter: Waiter?) throws(SyscallError) {
        guard waitsForPartner, isReadEnd != isWriteEnd, let waiter, !isNonBlocking else { return }
        try pipe.waitForPartner(ofReadEnd: isReadEnd, waiter: waiter)
    }

    override public var isSeekable: Bool { false }

    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        guard isReadEnd else { throw .ebadf }
        return try pipe.read(count: count, nonBlocking: isNonBlocking, waiter: waiter)
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        guard position == nil else { throw .espipe }
        guard isWriteEnd else { throw .ebadf }
        return try pipe.write(bytes, nonBlocking: isNonBlocking, waiter: waiter)
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .espipe }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        if let inode { return try inode.attributes() }
        var result = FileAttributes()
        result.device = DeviceNumber.make(major: 0, minor: 12)
        result.inodeNumber = pipe.inodeNumber
        result.mode = FileType.fifo.rawValue | 0o600
        result.blockSize = 4096
        result.accessTime = pipe.creationTime
        result.modificationTime = pipe.creationTime
        result.changeTime = pipe.creationTime
        return result
    }

    override public func truncate(to length: Int64) throws(SyscallError) { throw .einval }

    override public func readableByteCount() throws(SyscallError) -> Int { pipe.availableBytes }

    override public func readiness(for mask: PollEvents) -> PollEvents {
        pipe.readiness(reading: isReadEnd, writing: isWriteEnd, writerOpensSeen: writerOpensSeen)
            .intersection(mask.union(.unmaskable))
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { pipe.queue.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { pipe.queue.unregister(entry) }

    override public func released() {
        if isReadEnd { pipe.endClosed(readEnd: true) }
        if isWriteEnd { pipe.endClosed(readEnd: false) }
    }
}

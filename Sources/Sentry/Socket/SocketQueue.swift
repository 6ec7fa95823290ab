import State
import Synchronization

/// A socket's receive queue (gVisor's transport.queue): messages waiting to
/// be read, the bytes they hold against a limit set by the sender's
/// SO_SNDBUF, and whether its writer has gone (readers then see EOF once it
/// is empty) or its reader has (writers get EPIPE). Streams take what fits
/// and merge; datagrams and seqpackets go whole or not at all. The core a
/// loopback TCP or UDP socket can share with unix sockets.
///
/// Who waits is the endpoints' business: `readerQueue` is announced to when
/// a message arrives or the writer goes, `writerQueue` when room frees or
/// the reader goes. Messages, files in flight included, are saved; the
/// wait queues are not (endpoints wire them again after a load).
final class SocketQueue: Savable, @unchecked Sendable { // state guarded by `lock`
    static let savedTypeName = "socket.Queue"
    static let notSaved: Set<String> = [
        "lock", // a lock
        "readerQueue", // host-only: wired by the receiving endpoint
        "writerQueue", // host-only: wired by the sending endpoint
        "usedBytes", // recomputed from the messages
        "headOffset", // the head message is saved without the bytes already read
    ]

    /// Below the unix socket lock, above the wait queues; calls nothing
    /// (notifications and file releases run after it is let go).
    private let lock = Mutex(())
    private var messages: [SocketMessage] = []
    /// Bytes unread in the messages.
    private var usedBytes = 0
    /// Bytes of the first message a stream read has taken already: a small
    /// read moves the offset instead of the rest of the message.
    private var headOffset = 0
    /// Datagrams beyond this many wait (net.unix.max_dgram_qlen, 10: the queue is full past it).
    private var messageLimit = 10
    private var writerClosed = false
    private var readerClosed = false
    /// Where readers (the receiving endpoint and its pollers) wait.
    var readerQueue = WaitQueue()
    /// Where writers wait for room.
    var writerQueue = WaitQueue()

    init() {}

    /// `messageLimit`: how many datagrams may wait (UDP has no count, only its buffer).
    init(messageLimit: Int) { self.messageLimit = messageLimit }

    func save(to sink: inout SaveSink) throws {
        let (messages, writerClosed, readerClosed, messageLimit) = lock.withLock { _ in
            var unread = self.messages
            if headOffset > 0 { unread[0].data = Array(unread[0].data[headOffset...]) }
            return (unread, self.writerClosed, self.readerClosed, self.messageLimit)
        }
        try sink.save("messages", messages)
        try sink.save("writerClosed", writerClosed)
        try sink.save("readerClosed", readerClosed)
        try sink.save("messageLimit", messageLimit)
    }

    func load(from source: inout LoadSource) throws {
        messages = try source.load("messages")
        writerClosed = try source.load("writerClosed")
        readerClosed = try source.load("readerClosed")
        messageLimit = try source.load("messageLimit")
        try ImageValidation.require(messageLimit >= 0, field: "messageLimit", "negative limit \(messageLimit)")
        usedBytes = messages.reduce(0) { $0 + $1.data.count }
    }

    /// Bytes queued (FIONREAD, SIOCINQ).
    var queuedBytes: Int { lock.withLock { _ in usedBytes } }

    var isEmpty: Bool { lock.withLock { _ in messages.isEmpty } }

    /// The next message's length (FIONREAD of a datagram socket).
    var nextMessageLength: Int { lock.withLock { _ in messages.first.map { $0.data.count - headOffset } ?? 0 } }

    /// Whether a sender with a send buffer of `limit` bytes could queue
    /// something now (poll's EPOLLOUT: unix_writable's quarter of the buffer
    /// for streams, a free slot for datagrams).
    func hasRoom(limit: Int, datagram: Bool) -> Bool {
        lock.withLock { _ in
            if readerClosed { return true }
            if datagram { return messages.count <= messageLimit && usedBytes < limit }
            return usedBytes.multipliedReportingOverflow(by: 4).partialValue <= limit
        }
    }

    var isWriterClosed: Bool { lock.withLock { _ in writerClosed } }

    /// The files the queued messages carry (what unix_gc looks through).
    var filesInFlight: [FileDescription] { lock.withLock { _ in messages.flatMap(\.rights) } }

    /// Drops the messages that carry files, releasing them: an unreachable
    /// socket's part in a cycle (unix_gc's purge).
    func dropMessagesWithFiles() {
        let dropped = lock.withLock { _ -> [SocketMessage] in
            let dropped = messages.filter { !$0.rights.isEmpty }
            messages.removeAll { !$0.rights.isEmpty }
            usedBytes = messages.reduce(0) { $0 + $1.data.count } - headOffset
            return dropped
        }
        for message in dropped { message.releaseRights() }
        writerQueue.notify(.writable)
    }

    enum EnqueueResult {
        /// Bytes taken (for a datagram, all of them).
        case queued(Int)
        /// Nothing fits now.
        case full
        /// No reader: EPIPE (ECONNREFUSED for a datagram, the caller decides).
        case closed
    }

    /// Stream pieces shorter than this merge into the last message, so
    /// many small writes do not make as many messages; longer ones are
    /// queued as they are, without copying them again.
    static let mergeLimit = 4096

    /// Queues `message` against a limit of `limit` bytes (the sender's
    /// SO_SNDBUF). A stream takes the prefix that fits and merges a short
    /// one with the last message when neither carries files or different
    /// credentials, and the last is not partly read (it would keep its read
    /// bytes as long as writes merge into it).
    func enqueue(_ message: SocketMessage, limit: Int, stream: Bool) -> EnqueueResult {
        let result = lock.withLock { _ -> EnqueueResult in
            if readerClosed { return .closed }
            if stream {
                let room = max(0, limit - usedBytes)
                guard room > 0 || message.data.isEmpty else { return .full }
                var piece = message
                if piece.data.count > room { piece.data = Array(piece.data[..<room]) }
                if piece.data.count < Self.mergeLimit, piece.rights.isEmpty, let last = messages.last,
                   messages.count > 1 || headOffset == 0, last.rights.isEmpty, last.credentials == piece.credentials, !piece.data.isEmpty {
                    messages[messages.count - 1].data += piece.data
                } else {
                    messages.append(piece)
                    piece.account?.charge(piece)
                }
                usedBytes += piece.data.count
                return .queued(piece.data.count)
            }
            guard messages.count <= messageLimit, usedBytes == 0 || usedBytes + message.data.count <= limit else {
                return .full
            }
            messages.append(message)
            message.account?.charge(message)
            usedBytes += message.data.count
            return .queued(message.data.count)
        }
        if case .queued = result { readerQueue.notify(.readable) }
        return result
    }

    /// What one receive took.
    struct Received {
        var data: [UInt8] = []
        var rights: [FileDescription] = []
        var credentials: SocketCredentials?
        var address: [UInt8]?
        /// The whole datagram's length (MSG_TRUNC reports it).
        var messageLength = 0
        var isEmpty: Bool { data.isEmpty && rights.isEmpty }
    }

    /// Takes up to `count` bytes; nil if nothing is queued. A stream read
    /// gathers messages until `count`, stops after one that carries files,
    /// and (with `splitCredentials`, SO_PASSCRED) before one from another
    /// sender; a datagram read takes the first message whole, dropping
    /// what does not fit. With `peek` nothing is taken, and the files come
    /// with a new reference each (the caller owns them either way).
    func dequeue(count: Int, stream: Bool, peek: Bool, splitCredentials: Bool) -> Received? {
        let result = lock.withLock { _ -> Received? in
            guard let first = messages.first else { return nil }
            var received = Received()
            received.credentials = first.credentials
            received.address = first.address
            if !stream {
                received.messageLength = first.data.count
                received.data = Array(first.data.prefix(count))
                received.rights = first.rights
                if peek {
                    for file in first.rights { file.retainReference() }
                } else {
                    first.account?.uncharge(first)
                    messages.removeFirst()
                    usedBytes -= first.data.count
                }
                return received
            }
            var index = 0
            while index < messages.count, received.data.count < count {
                let message = messages[index]
                if index > 0, splitCredentials, message.credentials != received.credentials { break }
                let start = index == 0 ? headOffset : 0
                let unread = message.data.count - start
                let take = min(count - received.data.count, unread)
                if received.data.isEmpty, take == message.data.count {
                    // A whole message read first is handed over, not copied.
                    received.data = message.data
                } else {
                    received.data += message.data[start..<start + take]
                }
                let hadRights = !message.rights.isEmpty
                received.rights += message.rights
                if peek {
                    for file in message.rights { file.retainReference() }
                    index += 1
                } else if take == unread {
                    message.account?.uncharge(message)
                    messages.remove(at: index)
                    headOffset = 0
                    usedBytes -= take
                } else {
                    // Not peeking, the message read is the first.
                    headOffset = start + take
                    message.account?.uncharge(message)
                    messages[index].rights = []
                    usedBytes -= take
                }
                if hadRights { break }
            }
            received.messageLength = received.data.count
            return received
        }
        if result != nil, !peek { writerQueue.notify(.writable) }
        return result
    }

    /// Puts stream bytes a reader took back at the head, in the order they
    /// were taken, each piece with its sender's credentials: a MSG_WAITALL
    /// receive that the checkpoint's pause interrupts restarts and takes
    /// them again. The pieces carry no files (files end a gathering).
    func giveBack(_ pieces: [Received]) {
        let returned = pieces.filter { !$0.data.isEmpty }
            .map { SocketMessage(data: $0.data, credentials: $0.credentials, address: $0.address) }
        guard !returned.isEmpty else { return }
        lock.withLock { _ in
            if headOffset > 0, !messages.isEmpty {
                messages[0].data = Array(messages[0].data[headOffset...])
            }
            headOffset = 0
            messages.insert(contentsOf: returned, at: 0)
            usedBytes += returned.reduce(0) { $0 + $1.data.count }
        }
        readerQueue.notify(.readable)
    }

    /// The writer is gone (its close or shutdown): readers see EOF after the queued bytes.
    func closeWriter() {
        lock.withLock { _ in writerClosed = true }
        readerQueue.notify(.all)
    }

    /// The reader is gone: the queued messages go (their files released)
    /// and writers get EPIPE. Returns whether bytes were left unread.
    @discardableResult
    func closeReader() -> Bool {
        let dropped = lock.withLock { _ -> [SocketMessage] in
            readerClosed = true
            defer {
                messages = []
                usedBytes = 0
                headOffset = 0
            }
            return messages
        }
        for message in dropped { message.releaseRights() }
        writerQueue.notify(.all)
        return !dropped.isEmpty
    }
}

import State

/// Where a socket stands: not connected, listening, with a peer, or (a
/// loopback TCP socket only) waiting for room in a listener's full backlog.
enum ConnectionState: Int32, SavableValue {
    case unconnected = 0, listening, connected, connecting
}

/// A family's socket, as its `ConnectableSocket` base knows it: a saved
/// object with a wait queue, whose family's lock guards the connection
/// state (UnixSocket.namespace, LoopbackStack.lock).
protocol ConnectionLocking: AnyObject, SavableValue, Sendable {
    var queue: WaitQueue { get }
    /// Runs `body` holding the family's lock of connection state.
    static func withConnectionLock<R: Sendable, E: Error>(_ body: () throws(E) -> R) throws(E) -> R
}

/// What unix and loopback inet sockets share: a receive queue fed by a
/// peer or by senders of datagrams, the connection state both families
/// keep under their own lock (`Peer.withConnectionLock`) with its save and
/// load (the same field names as before, so older images load), the error
/// SO_ERROR reports once, and the loops that send a stream in pieces and
/// gather a receive (MSG_WAITALL). Each family keeps its names, its rules
/// for who may connect, and what a closed peer means.
///
/// `Peer` is the family's own subclass (UnixSocket, InetSocket), known here
/// through a protocol since Swift refuses a parameter bounded by the class itself.
class ConnectableSocket<Peer: ConnectionLocking>: SocketFile, @unchecked Sendable {
    /// What peers and senders queue for this socket; its reader queue is this socket's.
    private(set) var receiveQueue = SocketQueue()
    // Connection state guarded by `Peer.withConnectionLock`.
    var state = ConnectionState.unconnected
    /// The connected peer (kept after it closes, for getpeername); a datagram socket's default destination.
    var peer: Peer?
    /// Connections not yet accepted (a listener's), already connected to their clients.
    var backlog: [Peer] = []
    var backlogLimit = 0
    var receiveShutdown = false
    var sendShutdown = false
    /// SO_ERROR: ECONNRESET, ECONNREFUSED, or 0.
    var pendingError: Int32 = 0
    var isClosed = false

    required init() { super.init() }

    /// `messageLimit`: how many datagrams may wait in the receive queue (nil: unix's default).
    init(family: Int32, type: Int32, protocol number: Int32, flags: UInt32, messageLimit: Int? = nil) {
        super.init(family: family, type: type, protocol: number, flags: flags)
        if let messageLimit { receiveQueue = SocketQueue(messageLimit: messageLimit) }
        receiveQueue.readerQueue = queue
    }

    override func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("receiveQueue", receiveQueue)
        let saved = Peer.withConnectionLock { () -> (ConnectionState, Peer?, [Peer], Int, Bool, Bool, Int32, Bool) in
            (state, peer, backlog, backlogLimit, receiveShutdown, sendShutdown, pendingError, isClosed)
        }
        try sink.save("state", saved.0)
        try sink.save("peer", saved.1)
        try sink.save("backlog", saved.2)
        try sink.save("backlogLimit", saved.3)
        try sink.save("receiveShutdown", saved.4)
        try sink.save("sendShutdown", saved.5)
        try sink.save("pendingError", saved.6)
        try sink.save("isClosed", saved.7)
    }

    override func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        receiveQueue = try source.load("receiveQueue")
        state = try source.load("state")
        peer = try source.load("peer")
        backlog = try source.load("backlog")
        backlogLimit = try source.load("backlogLimit")
        receiveShutdown = try source.load("receiveShutdown")
        sendShutdown = try source.load("sendShutdown")
        pendingError = try source.load("pendingError")
        isClosed = try source.load("isClosed")
    }

    /// Wires the receive queue's wait queues again: its reader is this socket, its writer a connected peer.
    override func afterLoad() throws {
        try super.afterLoad()
        receiveQueue.readerQueue = queue
        if !isDatagram, let peer { receiveQueue.writerQueue = peer.queue }
    }

    /// A pending error (SO_ERROR), taken: the next call reports it once (the lock held).
    func takeError() -> SyscallError? {
        guard pendingError != 0 else { return nil }
        defer { pendingError = 0 }
        return SyscallError(rawValue: pendingError) ?? .econnreset
    }

    /// Sends `count` bytes as pieces made by `piece(written)`, each handed
    /// to `enqueue` (nil: no room, wait for `.writable` on this socket's
    /// queue) until all are taken; an error after some bytes went returns
    /// the count taken, as a partial write. The checkpoint's pause is no
    /// such error: the count is kept in the task and the call restarts,
    /// its re-entry sending only the rest (a stream's; a seqpacket's
    /// message goes whole). An empty message (seqpacket's) is one piece.
    func sendInPieces(count: Int, waiter: Waiter?, _ piece: (_ written: Int) -> SocketMessage,
                      _ enqueue: (SocketMessage) throws(SyscallError) -> Int?) throws(SyscallError) -> Int {
        var written = isStream ? min(Task.current?.takeReenteredWritten() ?? 0, count) : 0
        let deadline = deadline(sending: true)
        repeat {
            let next = piece(written)
            do {
                written += try waitUntil(.writable, on: queue, waiter: waiter, deadline: deadline) {
                    () throws(SyscallError) -> Int? in try enqueue(next)
                }
            } catch {
                guard written > 0 else { throw error }
                guard isStream, Task.current?.keepsWritten(written, interruptedBy: error) == true else { return written }
                throw error
            }
        } while written < count
        return written
    }

    /// Receives up to `count` bytes from the receive queue, waiting for
    /// `.readable` while it is empty; a pending error, taken, comes when
    /// nothing is queued (first with `errorFirst`, as UDP's sock_error),
    /// end of file after a shutdown or a connected writer's close. With
    /// MSG_WAITALL on a stream it goes on until `count` bytes, end of file,
    /// files received, or an error after some bytes (which are returned,
    /// as for a signal); the checkpoint's pause is no such error: the bytes
    /// go back to the queue and the call restarts to gather them again.
    func receiveGathering(count: Int, flags: UInt32, waiter: Waiter?, splitCredentials: Bool,
                          errorFirst: Bool) throws(SyscallError) -> SocketQueue.Received {
        let peek = flags & SocketABI.MSG_PEEK != 0
        let waitAll = isStream && flags & SocketABI.MSG_WAITALL != 0 && !peek
        let attempt = { (wanted: Int) throws(SyscallError) -> SocketQueue.Received? in
            if errorFirst, let error = Peer.withConnectionLock({ self.takeError() }) { throw error }
            if let received = self.receiveQueue.dequeue(count: wanted, stream: self.isStream, peek: peek,
                                                        splitCredentials: splitCredentials) {
                return received
            }
            return try Peer.withConnectionLock { () throws(SyscallError) -> SocketQueue.Received? in
                if let error = self.takeError() { throw error }
                if self.receiveShutdown || (!self.isDatagram && self.receiveQueue.isWriterClosed) {
                    return SocketQueue.Received()
                }
                return nil
            }
        }
        let deadline = deadline(sending: false)
        var gathered = SocketQueue.Received()
        // What each dequeue took, to give back.
        var pieces: [SocketQueue.Received] = []
        while true {
            let wanted = count - gathered.data.count
            let next: SocketQueue.Received
            do {
                next = try waitUntil(.readable, on: queue, waiter: waiter, deadline: deadline) {
                    () throws(SyscallError) -> SocketQueue.Received? in try attempt(wanted)
                }
            } catch {
                guard !gathered.data.isEmpty else { throw error }
                guard error == .erestartnohand || (error == .erestartsys && Task.current?.isInterruptedBySignal == false)
                else { return gathered }
                receiveQueue.giveBack(pieces)
                throw error
            }
            if waitAll { pieces.append(next) }
            if gathered.data.isEmpty && gathered.rights.isEmpty {
                gathered = next
            } else {
                gathered.data += next.data
                gathered.rights += next.rights
                gathered.messageLength = gathered.data.count
            }
            if !waitAll || next.data.isEmpty || !next.rights.isEmpty || gathered.data.count >= count {
                return gathered
            }
        }
    }

    override func readableByteCount() throws(SyscallError) -> Int {
        isDatagram ? receiveQueue.nextMessageLength : receiveQueue.queuedBytes
    }

    /// SO_ACCEPTCONN and SO_ERROR (taken); nil for the family's own options.
    override func familyOption(_ option: Int32) throws(SyscallError) -> [UInt8]? {
        switch option {
        case SocketABI.SO_ACCEPTCONN:
            return SocketFile.intBytes(Peer.withConnectionLock { state == .listening } ? 1 : 0)
        case SocketABI.SO_ERROR:
            return SocketFile.intBytes(Peer.withConnectionLock { takeError()?.rawValue ?? 0 })
        default:
            return nil
        }
    }
}

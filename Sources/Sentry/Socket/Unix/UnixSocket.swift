import State
import Synchronization

/// An AF_UNIX socket (net/unix/af_unix.c; gVisor's socket/unix and
/// unix/transport): SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET. Each socket
/// owns its receive queue; a connected stream or seqpacket pair writes into
/// each other's, a datagram into its destination's. A listener keeps the
/// server ends of connections not yet accepted (already connected to their
/// clients, as Linux's embryos). Names are abstract (a registry) or paths
/// (a socket inode in the sandbox's VFS, never a host socket).
///
/// Everything is saved: queued messages with their files in flight, peers,
/// pending connections and names; the wait queues are wired again after a load.
final class UnixSocket: ConnectableSocket<UnixSocket>, ConnectionLocking, @unchecked Sendable { // connection state guarded by `UnixSocket.namespace`
    override class var savedTypeName: String { "unix.Socket" }

    /// The lock of every unix socket's connection state and of every
    /// kernel's abstract names (`UnixNamespace.abstractNames`). Taken under
    /// FileDescription.lock at most; above SocketQueue.lock; calls no wait
    /// queue (notifications after it is let go).
    static let namespace = Mutex(())

    static func withConnectionLock<R: Sendable, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try namespace.withLock { _ throws(E) -> R in try body() }
    }

    /// Whose abstract names and garbage collector the socket is in: its
    /// maker's kernel's (in an image from before the field, the kernel
    /// being loaded).
    private(set) var unixNamespace: UnixNamespace
    /// sun_path's bytes: an abstract name starts with 0.
    private(set) var name: [UInt8]?
    /// The socket inode of a path name.
    var boundNode: UnixSocketInode?
    /// SO_PEERCRED: the peer's credentials at connect (or socketpair).
    private var peerCredentials: SocketCredentials?
    /// A listener's credentials at listen, which its clients see as SO_PEERCRED.
    private var listenerCredentials: SocketCredentials?
    /// unix_dgram_peer_wake_me: while a connected datagram socket's peer is
    /// full, an entry on the peer's writer queue that passes room freed
    /// there on to this socket's pollers (blocking senders wait on the
    /// peer's queue themselves). Host-only: armed again by the next poll.
    private let peerWake = Mutex<(target: UnixSocket, entry: WaitEntry)?>(nil)

    override class var notSaved: Set<String> { super.notSaved.union(["peerWake"]) }

    required init() {
        unixNamespace = UnixNamespace()
        super.init()
    }

    init(type: Int32, flags: UInt32, namespace: UnixNamespace) {
        unixNamespace = namespace
        super.init(family: SocketABI.AF_UNIX, type: type, protocol: 0, flags: flags)
    }

    override func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let saved = Self.namespace.withLock { _ in (name, boundNode, peerCredentials, listenerCredentials) }
        try sink.save("name", saved.0)
        try sink.save("boundNode", saved.1)
        try sink.save("peerCredentials", saved.2)
        try sink.save("listenerCredentials", saved.3)
        try sink.save("unixNamespace", Optional(unixNamespace))
    }

    override func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        name = try source.load("name")
        boundNode = try source.load("boundNode")
        peerCredentials = try source.load("peerCredentials")
        listenerCredentials = try source.load("listenerCredentials")
        guard let namespace = try source.load("unixNamespace", default: nil) ?? source.kernel?.unixNamespace else {
            throw StateError.invalidValue("a unix socket of no kernel", field: "unixNamespace")
        }
        unixNamespace = namespace
        try ImageValidation.require(family == SocketABI.AF_UNIX && [SocketABI.SOCK_STREAM, SocketABI.SOCK_DGRAM,
                                    SocketABI.SOCK_SEQPACKET].contains(socketType), field: "socketType",
                                    "unix socket of type \(socketType)")
        try ImageValidation.require(name.map { $0.count <= SocketABI.unixPathSize } ?? true, field: "name",
                                    "name longer than sun_path")
        // A unix connect never waits among connectors: a full backlog is EAGAIN.
        try ImageValidation.require(state != .connecting, field: "state", "a unix socket waiting to connect")
    }

    /// Enters the garbage collector's holders and the abstract name again.
    override func afterLoad() throws {
        try super.afterLoad()
        if !receiveQueue.filesInFlight.isEmpty { unixNamespace.garbage.holding(self) }
        if let name, name.first == 0, !isClosed {
            Self.namespace.withLock { _ in unixNamespace.abstractNames[abstractKey(name)] = self }
        }
    }

    private var isConnectionOriented: Bool { !isDatagram }

    // MARK: Names

    /// getsockname: the bound name, or just the family when unbound.
    override func localAddress() throws(SyscallError) -> [UInt8] {
        UnixAddress.encode(Self.namespace.withLock { _ in name })
    }

    /// getpeername: ENOTCONN without a peer.
    override func peerAddress() throws(SyscallError) -> [UInt8] {
        let peerName = try Self.namespace.withLock { _ throws(SyscallError) -> [UInt8]? in
            guard let peer else { throw .enotconn }
            return peer.name
        }
        return UnixAddress.encode(peerName)
    }

    /// bind(2): a path makes a socket inode (EADDRINUSE if the name
    /// exists), an abstract name enters the registry, an empty one autobinds.
    override func bind(_ address: [UInt8], task: Task) throws(SyscallError) {
        let parsed = try UnixAddress.parse(address, allowEmpty: true)
        if Self.namespace.withLock({ _ in name != nil }) { throw .einval }
        switch parsed {
        case .unnamed:
            try Self.namespace.withLock { _ throws(SyscallError) in
                guard name == nil else { throw .einval }
                let chosen = UnixAddress.autobindName { unixNamespace.abstractNames[abstractKey($0)] == nil }
                guard let chosen else { throw .enospc }
                unixNamespace.abstractNames[abstractKey(chosen)] = self
                name = chosen
            }
        case .abstract(let bytes):
            try Self.namespace.withLock { _ throws(SyscallError) in
                guard name == nil else { throw .einval }
                guard unixNamespace.abstractNames[abstractKey(bytes)] == nil else { throw .eaddrinuse }
                unixNamespace.abstractNames[abstractKey(bytes)] = self
                name = bytes
            }
        case .path(let path):
            let node = try UnixSocketInode.make(at: path, task: task)
            let bound = Self.namespace.withLock { _ -> Bool in
                guard name == nil else { return false }
                name = Array(path.utf8)
                boundNode = node
                return true
            }
            // Lost a race with another bind of this socket: the name stays, refusing connections.
            if bound { node.bind(self) }
        }
    }

    /// The registry's key of an abstract name of this socket's type.
    private func abstractKey(_ name: [UInt8]) -> [UInt8] { Self.abstractKey(name, type: socketType) }

    private static func abstractKey(_ name: [UInt8], type: Int32) -> [UInt8] {
        [UInt8(truncatingIfNeeded: type)] + name
    }

    /// The socket of this type a name refers to, for connect and sendto: an
    /// abstract name of another type is not found (ECONNREFUSED), a path's
    /// socket of another type is EPROTOTYPE.
    private func resolve(_ address: [UInt8], task: Task?) throws(SyscallError) -> UnixSocket {
        switch try UnixAddress.parse(address, allowEmpty: false) {
        case .unnamed: throw .einval
        case .abstract(let bytes):
            guard let socket = Self.namespace.withLock({ _ in unixNamespace.abstractNames[abstractKey(bytes)] }) else {
                throw .econnrefused
            }
            return socket
        case .path(let path):
            guard let task else { throw .econnrefused }
            let socket = try UnixSocketInode.socket(at: path, task: task)
            guard socket.socketType == socketType else { throw .eprototype }
            return socket
        }
    }

    // MARK: Connections

    /// listen(2): the caller's credentials become what its clients see as SO_PEERCRED.
    override func listen(backlog requested: Int32, task: Task) throws(SyscallError) {
        guard isConnectionOriented else { throw .eopnotsupp }
        // A negative or too large backlog is somaxconn (an unsigned comparison in Linux).
        let limit = requested < 0 || requested > SocketABI.maximumBacklog ? SocketABI.maximumBacklog : requested
        try Self.namespace.withLock { _ throws(SyscallError) in
            guard name != nil, state != .connected else { throw .einval }
            if state != .listening { listenerCredentials = SocketCredentials(of: task) }
            state = .listening
            backlogLimit = Int(limit)
        }
        queue.notify(.all)
    }

    /// connect(2). A stream or seqpacket socket queues a server end on the
    /// listener (EAGAIN when its backlog is full and the socket non-blocking,
    /// else it waits); a datagram socket only sets its default destination
    /// (AF_UNSPEC drops it).
    override func connect(_ address: [UInt8], task: Task, waiter: Waiter?) throws(SyscallError) {
        if isDatagram, address.count >= SocketABI.familySize, SocketFile.addressFamily(of: address) == 0 {
            Self.namespace.withLock { _ in
                peer = nil
                state = .unconnected
            }
            return
        }
        let target = try resolve(address, task: task)
        let credentials = SocketCredentials(of: task)
        if isDatagram {
            try Self.namespace.withLock { _ throws(SyscallError) in
                guard !target.isClosed else { throw .econnrefused }
                peer = target
                state = .connected
            }
            return
        }
        let deadline = deadline(sending: true)
        let server = try waitUntil(.writable, on: target.queue, waiter: waiter, deadline: deadline) {
            () throws(SyscallError) -> UnixSocket? in
            // unix_stream_connect's order: the listener, its backlog, then this socket's state.
            try Self.namespace.withLock { _ throws(SyscallError) -> UnixSocket? in
                guard target.state == .listening, !target.isClosed else { throw .econnrefused }
                guard target.backlog.count <= target.backlogLimit else { return nil }
                if state == .connected { throw .eisconn }
                if state == .listening { throw .einval }
                let server = UnixSocket(type: socketType, flags: 0, namespace: target.unixNamespace)
                server.name = target.name
                server.state = .connected
                server.peerCredentials = credentials
                peerCredentials = target.listenerCredentials
                Self.pair(self, server)
                target.backlog.append(server)
                return server
            }
        }
        withExtendedLifetime(server) { target.queue.notify(.readable) }
    }

    /// Connects `first` and `second` to each other (namespace lock held).
    private static func pair(_ first: UnixSocket, _ second: UnixSocket) {
        first.peer = second
        second.peer = first
        first.state = .connected
        second.state = .connected
        first.receiveQueue.writerQueue = second.queue
        second.receiveQueue.writerQueue = first.queue
    }

    /// socketpair(2): two sockets connected to each other, each seeing the creator as its peer.
    static func makePair(type: Int32, flags: UInt32, credentials: SocketCredentials,
                         namespace: UnixNamespace) -> (UnixSocket, UnixSocket) {
        let first = UnixSocket(type: type, flags: flags, namespace: namespace)
        let second = UnixSocket(type: type, flags: flags, namespace: namespace)
        Self.namespace.withLock { _ in
            first.peerCredentials = credentials
            second.peerCredentials = credentials
            pair(first, second)
        }
        return (first, second)
    }

    override func accept(flags: UInt32, waiter: Waiter?) throws(SyscallError) -> SocketFile {
        guard isConnectionOriented else { throw .eopnotsupp }
        let server = try waitUntil(.readable, on: queue, waiter: waiter, deadline: deadline(sending: false)) {
            () throws(SyscallError) -> UnixSocket? in
            try Self.namespace.withLock { _ throws(SyscallError) -> UnixSocket? in
                guard state == .listening else { throw .einval }
                return backlog.isEmpty ? nil : backlog.removeFirst()
            }
        }
        try server.setStatusFlags(flags & LinuxFile.nonBlocking)
        queue.notify(.writable)
        return server
    }

    /// shutdown(2): this side's directions, and the peer's opposite ones for a connected pair.
    override func shutdown(how: Int32) throws(SyscallError) {
        guard how >= SocketABI.SHUT_RD, how <= SocketABI.SHUT_RDWR else { throw .einval }
        let reading = how != SocketABI.SHUT_WR, writing = how != SocketABI.SHUT_RD
        let other = Self.namespace.withLock { _ -> UnixSocket? in
            if reading { receiveShutdown = true }
            if writing { sendShutdown = true }
            guard isConnectionOriented, let peer, !peer.isClosed else { return nil }
            if reading { peer.sendShutdown = true }
            if writing { peer.receiveShutdown = true }
            return peer
        }
        if writing, let other { other.receiveQueue.closeWriter() }
        queue.notify(.all)
        other?.queue.notify(.all)
    }

    /// The last close: the peer of a connected pair sees hang-up (and
    /// ECONNRESET if this side left bytes unread or was never accepted),
    /// its writes EPIPE; pending connections are closed in turn; the name
    /// goes from the registry (a path stays, refusing connections).
    override func released() {
        close(embryo: false)
        unixNamespace.garbage.collect()
    }

    /// `embryo`: a server end closed with its listener, never accepted.
    private func close(embryo: Bool) {
        let (other, pending, node) = Self.namespace.withLock { _ -> (UnixSocket?, [UnixSocket], UnixSocketInode?) in
            isClosed = true
            if let name, name.first == 0, unixNamespace.abstractNames[abstractKey(name)] === self {
                unixNamespace.abstractNames[abstractKey(name)] = nil
            }
            let pending = backlog
            backlog = []
            var hungUp: UnixSocket?
            if isConnectionOriented, let peer, !peer.isClosed {
                peer.receiveShutdown = true
                peer.sendShutdown = true
                if !receiveQueue.isEmpty || embryo {
                    peer.pendingError = SyscallError.econnreset.rawValue
                }
                hungUp = peer
            }
            return (hungUp, pending, boundNode)
        }
        node?.unbind(self)
        disarmPeerWake()
        receiveQueue.closeReader()
        other?.receiveQueue.closeWriter()
        other?.queue.notify(.all)
        queue.notify(.all)
        for server in pending { server.close(embryo: true) }
    }

    // MARK: Data

    override func send(_ message: OutgoingMessage, task: Task?, waiter: Waiter?) throws(SyscallError) -> Int {
        var message = message
        defer { for file in message.rights { file.releaseReference() } }
        let sender = task.map(SocketCredentials.init(of:))
        guard !isDatagram else { return try sendDatagram(&message, task: task, sender: sender, waiter: waiter) }
        let (peer, ownName) = try Self.namespace.withLock { _ throws(SyscallError) -> (UnixSocket, [UInt8]?) in
            if message.address != nil, isStream { throw state == .connected ? .eisconn : .eopnotsupp }
            guard state == .connected, let connected = self.peer else { throw .enotconn }
            if sendShutdown { throw .epipe }
            return (connected, name)
        }
        let credentials = credentialsToAttach(message, sender: sender, receiver: peer)
        let limit = lock.withLock { _ in options.sendBuffer }
        if !isStream, message.data.count > limit - 32 { throw .emsgsize }
        if isStream, message.data.isEmpty { return 0 }
        if !message.rights.isEmpty, let task { try task.inFlightFiles?.check(task) }
        let rights = message.rights
        // The files go with the first piece; whatever happens, they are no longer the caller's to release.
        message.rights = []
        var sentRights = false
        defer { if !sentRights { for file in rights { file.releaseReference() } } }
        return try sendInPieces(count: message.data.count, waiter: waiter) { written in
            SocketMessage(data: written == 0 ? message.data : Array(message.data[written...]),
                          rights: written == 0 ? rights : [], credentials: credentials,
                          address: ownName, rightsOwner: task?.credentials.realUID, account: task?.inFlightFiles)
        } _: { (piece) throws(SyscallError) -> Int? in
            if Self.namespace.withLock({ _ in sendShutdown }) { throw .epipe }
            switch peer.receiveQueue.enqueue(piece, limit: limit, stream: isStream) {
            case .queued(let count):
                if !piece.rights.isEmpty {
                    sentRights = true
                    peer.unixNamespace.garbage.holding(peer)
                }
                return count
            case .full: return nil
            case .closed: throw .epipe
            }
        }
    }

    private func sendDatagram(_ message: inout OutgoingMessage, task: Task?, sender: SocketCredentials?,
                              waiter: Waiter?) throws(SyscallError) -> Int {
        let limit = lock.withLock { _ in options.sendBuffer }
        if message.data.count > limit - 32 { throw .emsgsize }
        if !message.rights.isEmpty, let task { try task.inFlightFiles?.check(task) }
        let target: UnixSocket
        if let address = message.address {
            target = try resolve(address, task: task)
        } else {
            guard let peer = Self.namespace.withLock({ _ in peer }) else { throw .enotconn }
            target = peer
        }
        try checkDatagramTarget(target)
        let credentials = credentialsToAttach(message, sender: sender, receiver: target)
        let piece = SocketMessage(data: message.data, rights: message.rights, credentials: credentials,
                                  address: Self.namespace.withLock { _ in name },
                                  rightsOwner: task?.credentials.realUID, account: task?.inFlightFiles)
        let count = try waitUntil(.writable, on: target.receiveQueue.writerQueue, waiter: waiter,
                                  deadline: deadline(sending: true)) { () throws(SyscallError) -> Int? in
            switch target.receiveQueue.enqueue(piece, limit: limit, stream: false) {
            case .queued(let count):
                if !piece.rights.isEmpty { target.unixNamespace.garbage.holding(target) }
                return count
            case .full: return nil
            case .closed: throw .econnrefused
            }
        }
        message.rights = []
        return count
    }

    /// unix_may_send: a closed destination refuses; one connected elsewhere is EPERM.
    private func checkDatagramTarget(_ target: UnixSocket) throws(SyscallError) {
        try Self.namespace.withLock { _ throws(SyscallError) in
            if sendShutdown { throw .epipe }
            guard !target.isClosed else { throw .econnrefused }
            if let other = target.peer, other !== self, !other.isClosed { throw .eperm }
        }
    }

    /// Credentials go with a message sent with SCM_CREDENTIALS or when
    /// either end has SO_PASSCRED (maybe_add_creds).
    private func credentialsToAttach(_ message: OutgoingMessage, sender: SocketCredentials?,
                                     receiver: UnixSocket) -> SocketCredentials? {
        if let explicit = message.credentials { return explicit }
        let passes = lock.withLock { _ in options.flag(SocketABI.SO_PASSCRED) }
            || receiver.lock.withLock { _ in receiver.options.flag(SocketABI.SO_PASSCRED) }
        return passes ? sender ?? .none : nil
    }

    override func receive(count: Int, flags: UInt32, waiter: Waiter?) throws(SyscallError) -> SocketQueue.Received {
        let splitCredentials = lock.withLock { _ in options.flag(SocketABI.SO_PASSCRED) }
        try Self.namespace.withLock { _ throws(SyscallError) in
            if isConnectionOriented, state != .connected {
                throw isStream ? .einval : .enotconn
            }
        }
        return try receiveGathering(count: count, flags: flags, waiter: waiter, splitCredentials: splitCredentials,
                                    errorFirst: false)
    }

    // MARK: Readiness

    /// unix_poll and unix_dgram_poll.
    override func readiness(for mask: PollEvents) -> PollEvents {
        let (state, peer, receiveShutdown, sendShutdown, error, pending) = Self.namespace.withLock { _ in
            (self.state, self.peer, self.receiveShutdown, self.sendShutdown, pendingError, !backlog.isEmpty)
        }
        var ready: PollEvents = []
        if error != 0 { ready.insert(.error) }
        if receiveShutdown && sendShutdown { ready.insert(.hangUp) }
        if receiveShutdown { ready.formUnion(PollEvents.readable.union(.readHangUp)) }
        if !receiveQueue.isEmpty || pending { ready.formUnion(.readable) }
        if isConnectionOriented, state == .unconnected { ready.insert(.hangUp) }
        let sendBuffer = lock.withLock { _ in options.sendBuffer }
        // unix_writable: anything but a listener whose bytes in flight leave room (shutdown or not).
        if state != .listening,
           peer.map({ $0.receiveQueue.hasRoom(limit: sendBuffer, datagram: isDatagram) }) ?? true {
            ready.formUnion(PollEvents.writable.union(.writeBand))
        } else if isDatagram, let peer, !mask.isDisjoint(with: PollEvents.writable) {
            armPeerWake(on: peer)
        }
        return ready.intersection(mask.union(.unmaskable))
    }

    /// Registers the relay on `target`'s writer queue (moving it from a
    /// former peer), so this socket's pollers hear when `target` drains;
    /// none when that queue is this socket's own (a socketpair's).
    private func armPeerWake(on target: UnixSocket) {
        let notified = queue
        guard target.receiveQueue.writerQueue !== notified else { return }
        peerWake.withLock { armed in
            if armed?.target === target { return }
            if let armed { armed.target.receiveQueue.writerQueue.unregister(armed.entry) }
            let entry = WaitEntry(mask: PollEvents.writable) { events in
                notified.notify(events.intersection(PollEvents.writable))
                return true
            }
            target.receiveQueue.writerQueue.register(entry)
            armed = (target, entry)
        }
    }

    private func disarmPeerWake() {
        peerWake.withLock { armed in
            if let armed { armed.target.receiveQueue.writerQueue.unregister(armed.entry) }
            armed = nil
        }
    }

    // MARK: Options

    override func familyOption(_ option: Int32) throws(SyscallError) -> [UInt8]? {
        switch option {
        case SocketABI.SO_PEERCRED:
            let credentials = Self.namespace.withLock { _ in peerCredentials }
            return (credentials ?? SocketCredentials(processID: 0, userID: .max, groupID: .max)).bytes
        default:
            return try super.familyOption(option)
        }
    }
}

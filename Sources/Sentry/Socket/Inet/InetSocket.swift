import State
import Synchronization

/// An AF_INET or AF_INET6 socket on the sandbox's loopback network
/// (LoopbackStack): SOCK_STREAM with TCP's visible behaviour and SOCK_DGRAM
/// with UDP's, without a wire protocol. A TCP connection is a pair of
/// sockets writing into each other's receive queue, as a unix stream pair;
/// a listener keeps the server ends of connections not yet accepted
/// (established already, as Linux's accept queue). A non-blocking connect
/// to a full backlog waits among the listener's `connectors` (`.connecting`)
/// and is established when an accept makes room, where Linux's would be
/// when its next SYN finds room (a second or more later, not necessarily in
/// the order the connects came). A datagram goes to the socket bound to its
/// destination, carrying its sender's address.
///
/// Everything is saved: queued bytes both ways, peers, pending connections,
/// endpoints; after a load the socket enters the port table again.
final class InetSocket: ConnectableSocket<InetSocket>, ConnectionLocking, @unchecked Sendable { // connection state guarded by `LoopbackStack.lock`
    override class var savedTypeName: String { "inet.Socket" }

    static func withConnectionLock<R: Sendable, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        try LoopbackStack.lock.withLock { _ throws(E) -> R in try body() }
    }

    /// The bound endpoint (its port nonzero once bound).
    private var local: InetEndpoint?
    /// The connected peer's endpoint (a datagram socket's default destination).
    private var remote: InetEndpoint?
    /// IPV6_V6ONLY.
    private var v6Only = false
    /// IPPROTO_IP, IPPROTO_IPV6 and IPPROTO_TCP options set, by `optionKey`.
    private var protocolOptions: [Int32: Int32] = [:]
    /// A listener's non-blocking connectors waiting for room in its backlog, oldest first.
    private(set) var connectors: [InetSocket] = []
    /// A non-blocking connect said EINPROGRESS and no connect has seen how
    /// it ended since (Linux's SS_CONNECTING): the next says 0, EALREADY or the error.
    private var awaitingConnect = false
    /// Whose loopback network the socket is on: its maker's kernel (in an
    /// image from before the field, the kernel being loaded).
    private var kernel: Kernel?

    required init() { super.init() }

    init(family: Int32, type: Int32, protocol number: Int32, flags: UInt32, kernel: Kernel?) {
        // UDP counts no datagrams, only bytes against the receive buffer.
        super.init(family: family, type: type, protocol: number, flags: flags, messageLimit: Int.max)
        self.kernel = kernel
    }

    /// The port table this socket is in (or enters): its kernel's. Every
    /// socket has a kernel (a task's, or a load's); one without would find
    /// an empty network each time.
    private var stack: LoopbackStack { kernel?.loopback ?? LoopbackStack() }

    /// inet_create: TCP for streams, UDP for datagrams (protocol 0 or the
    /// protocol's number); other types are not on this network.
    static func make(family: Int32, type: Int32, protocol number: Int32, flags: UInt32,
                     kernel: Kernel?) throws(SyscallError) -> InetSocket {
        switch type {
        case SocketABI.SOCK_STREAM:
            guard number == 0 || number == InetABI.IPPROTO_TCP else { throw .eprotonosupport }
            return InetSocket(family: family, type: type, protocol: InetABI.IPPROTO_TCP, flags: flags, kernel: kernel)
        case SocketABI.SOCK_DGRAM:
            guard number == 0 || number == InetABI.IPPROTO_UDP else { throw .eprotonosupport }
            return InetSocket(family: family, type: type, protocol: InetABI.IPPROTO_UDP, flags: flags, kernel: kernel)
        default:
            throw .esocktnosupport
        }
    }

    override func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let saved = Self.withConnectionLock {
            (local, remote, v6Only, protocolOptions, connectors, awaitingConnect)
        }
        try sink.save("local", saved.0)
        try sink.save("remote", saved.1)
        try sink.save("v6Only", saved.2)
        try sink.save("protocolOptions", saved.3)
        try sink.save("connectors", saved.4)
        try sink.save("awaitingConnect", saved.5)
        try sink.save("kernel", kernel)
    }

    override func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        local = try source.load("local")
        remote = try source.load("remote")
        v6Only = try source.load("v6Only")
        protocolOptions = try source.load("protocolOptions")
        connectors = try source.load("connectors", default: [])
        awaitingConnect = try source.load("awaitingConnect", default: false)
        kernel = try source.load("kernel", default: nil) ?? source.kernel
        try ImageValidation.require(kernel != nil, field: "kernel", "an inet socket of no kernel")
        try ImageValidation.require([SocketABI.AF_INET, SocketABI.AF_INET6].contains(family)
                                    && [SocketABI.SOCK_STREAM, SocketABI.SOCK_DGRAM].contains(socketType),
                                    field: "socketType", "inet socket of family \(family) type \(socketType)")
    }

    /// Enters its kernel's port table again (the kernel's fields are loaded by now).
    override func afterLoad() throws {
        try super.afterLoad()
        if let local, !isClosed {
            stack.withTable { $0.insert(self, type: socketType, port: local.port) }
        }
    }

    // MARK: Names

    override func localAddress() throws(SyscallError) -> [UInt8] {
        let endpoint = Self.withConnectionLock { local }
        return InetAddress.encode(endpoint ?? (family == SocketABI.AF_INET ? .ipv4Any : .ipv6Any), family: family)
    }

    override func peerAddress() throws(SyscallError) -> [UInt8] {
        let endpoint = try Self.withConnectionLock { () throws(SyscallError) -> InetEndpoint in
            guard state == .connected, let remote else { throw .enotconn }
            if isStream, peer?.isClosed ?? true, receiveShutdown, sendShutdown { throw .enotconn }
            return remote
        }
        return InetAddress.encode(endpoint, family: family)
    }

    /// Datagrams carry their sender's sockaddr already encoded for the receiver.
    override func senderAddress(_ stored: [UInt8]) -> [UInt8] { stored }

    /// The loopback address a connection from here to `destination` leaves from.
    private static func source(for destination: InetEndpoint) -> InetEndpoint {
        destination.isIPv4 ? .ipv4Loopback : .ipv6Loopback
    }

    /// A connect or sendto destination: a wildcard means this host; any
    /// address off the loopback network is unreachable (an empty network).
    private func destination(_ endpoint: InetEndpoint) throws(SyscallError) -> InetEndpoint {
        if endpoint.isWildcard { return Self.source(for: endpoint).with(port: endpoint.port) }
        guard endpoint.isLoopback else { throw .enetunreach }
        return endpoint
    }

    /// bind(2) (inet_bind, inet6_bind): a loopback or wildcard address;
    /// port 0 picks an ephemeral one; EADDRINUSE when another socket holds
    /// an overlapping address on the port, unless both set SO_REUSEPORT, or
    /// both SO_REUSEADDR and the other is not listening.
    override func bind(_ address: [UInt8], task: Task) throws(SyscallError) {
        let only = Self.withConnectionLock { v6Only }
        guard case .endpoint(let endpoint) = try InetAddress.parse(address, family: family, v6Only: only,
                                                                   allowUnspecified: false) else { throw .eafnosupport }
        guard endpoint.isWildcard || endpoint.isLoopback else { throw .eaddrnotavail }
        if endpoint.port != 0, endpoint.port < InetABI.privilegedPortLimit,
           !task.credentials.hasCapability(InetABI.capNetBindService) { throw .eacces }
        try stack.withTable { table throws(SyscallError) in
            guard local == nil, state == .unconnected else { throw .einval }
            try enter(&table, at: endpoint)
        }
    }

    /// Takes `endpoint` (an ephemeral port for port 0) in the table (its lock held).
    private func enter(_ table: inout LoopbackStack.Table, at endpoint: InetEndpoint) throws(SyscallError) {
        var port = endpoint.port
        if port == 0 {
            guard let free = table.ephemeralPort(type: socketType) else { throw .eaddrinuse }
            port = free
        } else if table.sockets(type: socketType, port: port).contains(where: { conflicts(with: $0, at: endpoint) }) {
            throw .eaddrinuse
        }
        local = endpoint.with(port: port)
        table.insert(self, type: socketType, port: port)
    }

    /// Whether `other`, bound on the same port, keeps this socket from `endpoint` (inet_bind_conflict).
    private func conflicts(with other: InetSocket, at endpoint: InetEndpoint) -> Bool {
        guard other !== self, !other.isClosed, let taken = other.local else { return false }
        guard taken.accepts(endpoint.address, v6Only: other.v6Only) || endpoint.accepts(taken.address, v6Only: v6Only)
        else { return false }
        if reusing(SocketABI.SO_REUSEPORT) && other.reusing(SocketABI.SO_REUSEPORT) { return false }
        if reusing(SocketABI.SO_REUSEADDR) && other.reusing(SocketABI.SO_REUSEADDR)
            && (isDatagram || other.state != .listening) { return false }
        return true
    }

    /// SO_REUSEADDR or SO_REUSEPORT as set now (Linux looks at sk_reuse when checking, not at bind).
    private func reusing(_ option: Int32) -> Bool { lock.withLock { _ in options.flag(option) } }

    /// The unbound socket's wildcard, for an automatic bind.
    private var wildcard: InetEndpoint { family == SocketABI.AF_INET ? .ipv4Any : .ipv6Any }

    // MARK: Connections

    /// listen(2): an unbound socket takes an ephemeral port; a port another
    /// listener holds is EADDRINUSE unless both set SO_REUSEPORT. EINVAL once
    /// a connect was tried (`remote`), as Linux (6.18) says even after the
    /// connect was refused or a shutdown disconnected it.
    override func listen(backlog requested: Int32, task: Task) throws(SyscallError) {
        guard isStream else { throw .eopnotsupp }
        let limit = requested < 0 || requested > SocketABI.maximumBacklog ? SocketABI.maximumBacklog : requested
        var admitted: [InetSocket] = []
        try stack.withTable { table throws(SyscallError) in
            guard state != .connected, state != .connecting, remote == nil else { throw .einval }
            if local == nil { try enter(&table, at: wildcard) }
            if state != .listening, let local {
                let others = table.sockets(type: socketType, port: local.port)
                if others.contains(where: { other in
                    other !== self && other.state == .listening && !other.isClosed
                        && !(reusing(SocketABI.SO_REUSEPORT) && other.reusing(SocketABI.SO_REUSEPORT))
                        && (other.local.map { $0.accepts(local.address, v6Only: other.v6Only)
                            || local.accepts($0.address, v6Only: v6Only) } ?? false)
                }) { throw .eaddrinuse }
            }
            state = .listening
            backlogLimit = Int(limit)
            admitted = admitConnectorsLocked(&table)
        }
        queue.notify(.all)
        for connector in admitted { connector.queue.notify(.all) }
    }

    /// connect(2). A stream joins the listener of the destination at once
    /// (ECONNREFUSED if none); a non-blocking one still says EINPROGRESS and
    /// is writable straight after, as on Linux's loopback, a refusal then
    /// showing in SO_ERROR. A blocking connect waits while the listener's
    /// backlog is full; a non-blocking one waits among its connectors. The
    /// connect after an EINPROGRESS says how it went (inet_stream_connect's
    /// SS_CONNECTING): EALREADY while pending (a blocking one waits), 0 once
    /// established, the error (ECONNABORTED once taken) if it failed. A
    /// datagram socket sets its default destination.
    override func connect(_ address: [UInt8], task: Task, waiter: Waiter?) throws(SyscallError) {
        let only = Self.withConnectionLock { v6Only }
        let parsed = try InetAddress.parse(address, family: family, v6Only: only, allowUnspecified: true)
        guard case .endpoint(let given) = parsed else {
            // AF_UNSPEC: a datagram socket forgets its destination; a stream has nothing to dissolve here.
            if isDatagram {
                Self.withConnectionLock {
                    remote = nil
                    state = .unconnected
                }
            }
            return
        }
        if !isDatagram, try connectionSettled(waiter: waiter) { return }
        let target = try destination(given)
        if isDatagram {
            try stack.withTable { table throws(SyscallError) in
                if local == nil { try enter(&table, at: wildcard) }
                if let bound = local, bound.isWildcard { local = Self.source(for: target).with(port: bound.port) }
                remote = target
                state = .connected
            }
            return
        }
        do {
            let listener = try waitForListener(target, waiter: waiter)
            listener.queue.notify(.readable)
        } catch .eagain where waiter == nil {
            try waitAmongConnectors(target)?.queue.notify(.readable)
        } catch .econnrefused where waiter == nil {
            // tcp_done: the refused socket is shut both ways, its error pending.
            Self.withConnectionLock {
                pendingError = SyscallError.econnrefused.rawValue
                receiveShutdown = true
                sendShutdown = true
                awaitingConnect = true
            }
            queue.notify(.all)
        }
        if waiter == nil { throw .einprogress }
    }

    /// What a connect after an EINPROGRESS says (true: the connect returns
    /// 0); false when none is awaited, for a connect of its own.
    private func connectionSettled(waiter: Waiter?) throws(SyscallError) -> Bool {
        let pending = Self.withConnectionLock { awaitingConnect && state == .connecting }
        if pending {
            guard waiter != nil else { throw .ealready }
            _ = try waitUntil(.writable, on: queue, waiter: waiter, deadline: deadline(sending: true)) {
                Self.withConnectionLock { state == .connecting ? nil : true }
            }
        }
        return try Self.withConnectionLock { () throws(SyscallError) -> Bool in
            guard awaitingConnect else { return false }
            awaitingConnect = false
            if state == .connected { return true }
            throw takeError() ?? .econnaborted
        }
    }

    /// A non-blocking connect finding `target`'s backlog full: the socket
    /// takes its source port and waits among the listener's connectors,
    /// unless an accept made room meanwhile (then it joins; returns the listener).
    private func waitAmongConnectors(_ target: InetEndpoint) throws(SyscallError) -> InetSocket? {
        try stack.withTable { table throws(SyscallError) -> InetSocket? in
            guard let listener = Self.listener(for: target, in: table) else { throw .econnrefused }
            if listener.backlog.count <= listener.backlogLimit {
                try join(listener, at: target, table: &table)
                awaitingConnect = true
                return listener
            }
            try takeSource(for: target, table: &table)
            remote = target
            state = .connecting
            awaitingConnect = true
            listener.connectors.append(self)
            return nil
        }
    }

    /// Establishes waiting connectors while the backlog has room (the
    /// table's lock held); returns them, to be told they are writable.
    private func admitConnectorsLocked(_ table: inout LoopbackStack.Table) -> [InetSocket] {
        var admitted: [InetSocket] = []
        while backlog.count <= backlogLimit, !connectors.isEmpty {
            let next = connectors.removeFirst()
            guard next.state == .connecting, !next.isClosed, let target = next.remote else { continue }
            do {
                try next.join(self, at: target, table: &table)
            } catch {
                next.refuseLocked()
            }
            admitted.append(next)
        }
        return admitted
    }

    /// A listener that stops listening refuses its waiting connectors, as
    /// the RST answering their next SYN would (the table's lock held).
    private func refuseConnectorsLocked() -> [InetSocket] {
        let refused = connectors.filter { $0.state == .connecting && !$0.isClosed }
        connectors = []
        for connector in refused { connector.refuseLocked() }
        return refused
    }

    /// A waiting connect that goes (its close, a shutdown) leaves its
    /// listener's connectors: Linux keeps nothing of a SYN_SENT socket then
    /// (the table's lock held).
    private func leaveConnectorsLocked(_ table: LoopbackStack.Table) {
        guard state == .connecting, let remote else { return }
        for listener in table.sockets(type: SocketABI.SOCK_STREAM, port: remote.port) {
            listener.connectors.removeAll { $0 === self }
        }
    }

    /// tcp_done for a connect refused while waiting: shut both ways, the
    /// error pending; it keeps its name, as getsockname on Linux shows
    /// (the table's lock held).
    private func refuseLocked() {
        state = .unconnected
        pendingError = SyscallError.econnrefused.rawValue
        receiveShutdown = true
        sendShutdown = true
    }

    /// Joins `target`'s listener, waiting (with `waiter`) while its backlog
    /// is full; returns the listener. Without a waiter, the connect is
    /// noted as awaited (`awaitingConnect`) in the turn of the lock that joins.
    private func waitForListener(_ target: InetEndpoint, waiter: Waiter?) throws(SyscallError) -> InetSocket {
        var listener = try stack.withTable { table throws(SyscallError) -> InetSocket in
            if state == .connected || state == .listening { throw .eisconn }
            remote = target
            pendingError = 0
            receiveShutdown = false
            sendShutdown = false
            guard let found = Self.listener(for: target, in: table) else { throw .econnrefused }
            return found
        }
        _ = try waitUntil(.writable, on: listener.queue, waiter: waiter, deadline: deadline(sending: true)) {
            () throws(SyscallError) -> Bool? in
            try stack.withTable { table throws(SyscallError) -> Bool? in
                guard let found = Self.listener(for: target, in: table) else { throw .econnrefused }
                listener = found
                guard found.backlog.count <= found.backlogLimit else { return nil }
                if state == .connected { throw .eisconn }
                try join(found, at: target, table: &table)
                // A non-blocking connect says EINPROGRESS; the next connect says how it went.
                if waiter == nil { awaitingConnect = true }
                return true
            }
        }
        return listener
    }

    /// The listener `destination` reaches: one bound to that very address before a wildcard.
    private static func listener(for destination: InetEndpoint, in table: LoopbackStack.Table) -> InetSocket? {
        let listening = table.sockets(type: SocketABI.SOCK_STREAM, port: destination.port).filter {
            $0.state == .listening && !$0.isClosed
                && ($0.local?.accepts(destination.address, v6Only: $0.v6Only) ?? false)
        }
        return listening.first { $0.local?.address == destination.address } ?? listening.first
    }

    /// Makes the server end of a connection to `listener` (the table's lock held).
    private func join(_ listener: InetSocket, at target: InetEndpoint,
                      table: inout LoopbackStack.Table) throws(SyscallError) {
        try takeSource(for: target, table: &table)
        guard let mine = local else { throw .einval }
        let server = InetSocket(family: listener.family, type: SocketABI.SOCK_STREAM, protocol: InetABI.IPPROTO_TCP,
                                flags: 0, kernel: listener.kernel)
        server.local = target
        server.remote = mine
        server.protocolOptions = listener.protocolOptions
        table.insert(server, type: SocketABI.SOCK_STREAM, port: target.port)
        remote = target
        peer = server
        server.peer = self
        state = .connected
        server.state = .connected
        receiveQueue.writerQueue = server.queue
        server.receiveQueue.writerQueue = queue
        listener.backlog.append(server)
    }

    /// Binds an unbound socket to the loopback address (and an ephemeral
    /// port) a connection to `target` leaves from, or a wildcard-bound one
    /// to that address (the table's lock held).
    private func takeSource(for target: InetEndpoint, table: inout LoopbackStack.Table) throws(SyscallError) {
        let source = Self.source(for: target)
        if local == nil {
            try enter(&table, at: source)
        } else if let bound = local, bound.isWildcard {
            local = source.with(port: bound.port)
        }
    }

    /// accept4(2): the next established connection; it inherits the listener's SOL_SOCKET options.
    override func accept(flags: UInt32, waiter: Waiter?) throws(SyscallError) -> SocketFile {
        guard isStream else { throw .eopnotsupp }
        var admitted: [InetSocket] = []
        let server = try waitUntil(.readable, on: queue, waiter: waiter, deadline: deadline(sending: false)) {
            () throws(SyscallError) -> InetSocket? in
            try stack.withTable { table throws(SyscallError) -> InetSocket? in
                guard state == .listening else { throw .einval }
                guard !backlog.isEmpty else { return nil }
                let next = backlog.removeFirst()
                admitted = admitConnectorsLocked(&table)
                return next
            }
        }
        for connector in admitted { connector.queue.notify(.all) }
        let inherited = lock.withLock { _ in options }
        server.lock.withLock { _ in server.options = inherited }
        try server.setStatusFlags(flags & LinuxFile.nonBlocking)
        queue.notify(.writable)
        return server
    }

    /// shutdown(2) (inet_shutdown): ENOTCONN on an unconnected socket (its
    /// directions still shut); SHUT_RD on a listener stops it listening; a
    /// connect under way is given up (tcp_disconnect: unconnected again,
    /// nothing shut, ECONNRESET pending).
    override func shutdown(how: Int32) throws(SyscallError) {
        guard how >= SocketABI.SHUT_RD, how <= SocketABI.SHUT_RDWR else { throw .einval }
        let reading = how != SocketABI.SHUT_WR, writing = how != SocketABI.SHUT_RD
        var dropped: [InetSocket] = []
        var refused: [InetSocket] = []
        let (other, connected) = stack.withTable { table -> (InetSocket?, Bool) in
            if state == .listening {
                if reading {
                    dropped = backlog
                    backlog = []
                    refused = refuseConnectorsLocked()
                    state = .unconnected
                }
                return (nil, true)
            }
            if state == .connecting {
                leaveConnectorsLocked(table)
                state = .unconnected
                awaitingConnect = false
                pendingError = SyscallError.econnreset.rawValue
                receiveShutdown = false
                sendShutdown = false
                return (nil, true)
            }
            if reading { receiveShutdown = true }
            if writing { sendShutdown = true }
            guard state == .connected else { return (nil, false) }
            guard isStream, let peer, !peer.isClosed else { return (nil, true) }
            if writing { peer.receiveShutdown = true }
            return (peer, true)
        }
        if writing, let other { other.receiveQueue.closeWriter() }
        queue.notify(.all)
        other?.queue.notify(.all)
        for server in dropped { server.close(reset: true) }
        for connector in refused { connector.queue.notify(.all) }
        if !connected { throw .enotconn }
    }

    /// The last close: the peer reads EOF after what was sent, or
    /// ECONNRESET when this side leaves bytes unread, lingers 0 seconds, or
    /// was never accepted (Linux sends RST then); the port is free again.
    override func released() {
        let linger = lock.withLock { _ in options.lingerOn != 0 && options.lingerSeconds == 0 }
        close(reset: linger)
    }

    private func close(reset forced: Bool) {
        var refused: [InetSocket] = []
        let (other, pending) = stack.withTable { table -> (InetSocket?, [InetSocket]) in
            isClosed = true
            leaveConnectorsLocked(table)
            if let local { table.remove(self, type: socketType, port: local.port) }
            let pending = backlog
            backlog = []
            refused = refuseConnectorsLocked()
            guard isStream, let peer, !peer.isClosed else { return (nil, pending) }
            peer.receiveShutdown = true
            if forced || !receiveQueue.isEmpty {
                peer.pendingError = SyscallError.econnreset.rawValue
                peer.sendShutdown = true
            }
            return (peer, pending)
        }
        receiveQueue.closeReader()
        other?.receiveQueue.closeWriter()
        other?.queue.notify(.all)
        queue.notify(.all)
        for server in pending { server.close(reset: true) }
        for connector in refused { connector.queue.notify(.all) }
    }

    // MARK: Data

    override func send(_ message: OutgoingMessage, task: Task?, waiter: Waiter?) throws(SyscallError) -> Int {
        // Files cannot travel over IP: SCM_RIGHTS given here are dropped.
        for file in message.rights { file.releaseReference() }
        guard isStream else { return try sendDatagram(message, waiter: waiter) }
        var found = try connectedPeer()
        if found == nil {
            // sk_stream_wait_connect: a connection under way is waited for (EAGAIN if non-blocking).
            _ = try waitUntil(.writable, on: queue, waiter: waiter, deadline: deadline(sending: true)) {
                Self.withConnectionLock { state == .connecting ? nil : true }
            }
            found = try connectedPeer()
        }
        guard let peer = found else { throw .epipe }
        if message.data.isEmpty { return 0 }
        let limit = lock.withLock { _ in options.sendBuffer }
        return try sendInPieces(count: message.data.count, waiter: waiter) { written in
            SocketMessage(data: written == 0 ? message.data : Array(message.data[written...]))
        } _: { (piece) throws(SyscallError) -> Int? in
            if stack.withTable({ _ in sendShutdown }) { throw .epipe }
            switch peer.receiveQueue.enqueue(piece, limit: limit, stream: true) {
            case .queued(let count): return count
            case .full: return nil
            case .closed:
                // The peer is gone: these bytes vanish (its RST answers them) and later sends get EPIPE.
                Self.withConnectionLock { sendShutdown = true }
                return piece.data.count
            }
        }
    }

    /// tcp_sendmsg's checks: a pending error first, then EPIPE when not
    /// connected or shut down (msg_name is ignored); nil while a connection
    /// is under way, to be waited for.
    private func connectedPeer() throws(SyscallError) -> InetSocket? {
        try Self.withConnectionLock { () throws(SyscallError) -> InetSocket? in
            if state == .connecting { return nil }
            if let error = takeError() { throw error }
            guard state == .connected, let connected = self.peer, !sendShutdown else { throw .epipe }
            return connected
        }
    }

    /// udp_sendmsg: to the destination given or connected; a datagram no
    /// socket is bound for is dropped, and a connected sender learns of it
    /// as ECONNREFUSED on its next call (the ICMP port unreachable).
    private func sendDatagram(_ message: OutgoingMessage, waiter: Waiter?) throws(SyscallError) -> Int {
        let maximum = family == SocketABI.AF_INET ? InetABI.maximumDatagram : InetABI.maximumDatagram6
        var explicit: InetEndpoint?
        if let address = message.address {
            let only = Self.withConnectionLock { v6Only }
            if case .endpoint(let given) = try InetAddress.parse(address, family: family, v6Only: only,
                                                                allowUnspecified: true) {
                guard given.port != 0 else { throw .einval }
                explicit = try destination(given)
            }
        }
        guard message.data.count <= maximum else { throw .emsgsize }
        let (source, target) = try stack.withTable { table throws(SyscallError) -> (InetEndpoint, InetSocket?) in
            if let error = takeError() { throw error }
            if sendShutdown { throw .epipe }
            guard let to = explicit ?? (state == .connected ? remote : nil) else { throw .edestaddrreq }
            if local == nil { try enter(&table, at: wildcard) }
            guard let bound = local else { throw .einval }
            let from = bound.isWildcard ? Self.source(for: to).with(port: bound.port) : bound
            let receivers = table.sockets(type: SocketABI.SOCK_DGRAM, port: to.port).filter {
                !$0.isClosed && ($0.local?.accepts(to.address, v6Only: $0.v6Only) ?? false)
                    && ($0.state != .connected || $0.remote == from)
            }
            let receiver = receivers.first { $0.local?.address == to.address } ?? receivers.first
            if receiver == nil, state == .connected, explicit == nil {
                pendingError = SyscallError.econnrefused.rawValue
            }
            return (from, receiver)
        }
        guard let target else {
            queue.notify(.all)
            return message.data.count
        }
        let limit = target.lock.withLock { _ in target.options.receiveBuffer }
        let datagram = SocketMessage(data: message.data, address: InetAddress.encode(source, family: target.family))
        // A full receiver drops the datagram, as UDP does.
        _ = target.receiveQueue.enqueue(datagram, limit: limit, stream: false)
        return message.data.count
    }

    override func receive(count: Int, flags: UInt32, waiter: Waiter?) throws(SyscallError) -> SocketQueue.Received {
        try Self.withConnectionLock { () throws(SyscallError) in
            // tcp_recvmsg: a connection under way is waited for; a shut one reads end of file.
            if isStream, state == .unconnected || state == .listening, pendingError == 0, !receiveShutdown {
                throw .enotconn
            }
        }
        // A stream's writer closes only with this side's receiveShutdown set (shutdown, close).
        return try receiveGathering(count: count, flags: flags, waiter: waiter, splitCredentials: false,
                                    errorFirst: isDatagram)
    }

    // MARK: Readiness

    /// tcp_poll and udp_poll (datagram_poll).
    override func readiness(for mask: PollEvents) -> PollEvents {
        let (state, peer, receiveShutdown, sendShutdown, error, pending) = Self.withConnectionLock {
            (self.state, self.peer, self.receiveShutdown, self.sendShutdown, pendingError, !backlog.isEmpty)
        }
        var ready: PollEvents = []
        if state == .listening {
            if pending { ready.formUnion(.readable) }
            return ready.intersection(mask.union(.unmaskable))
        }
        // tcp_poll in SYN_SENT: nothing until established or refused.
        if state == .connecting { return [] }
        if error != 0 { ready.insert(.error) }
        if receiveShutdown && sendShutdown { ready.insert(.hangUp) }
        if isStream, state == .unconnected { ready.insert(.hangUp) }
        if receiveShutdown { ready.formUnion(PollEvents.readable.union(.readHangUp)) }
        if !receiveQueue.isEmpty { ready.formUnion(.readable) }
        let sendBuffer = lock.withLock { _ in options.sendBuffer }
        if isDatagram || sendShutdown || peer.map({ $0.receiveQueue.hasRoom(limit: sendBuffer, datagram: false) }) ?? true {
            ready.formUnion(PollEvents.writable.union(.writeBand))
        }
        return ready.intersection(mask.union(.unmaskable))
    }

    // MARK: Options

    private static func optionKey(_ level: Int32, _ name: Int32) -> Int32 { level << 16 | name }

    /// Whether options of `level` apply to this socket.
    private func hasLevel(_ level: Int32) -> Bool {
        level == InetABI.IPPROTO_IP || (level == InetABI.IPPROTO_IPV6 && family == SocketABI.AF_INET6)
            || (level == InetABI.IPPROTO_TCP && isStream)
    }

    /// Linux's defaults for the options an application reads back; nil: ENOPROTOOPT.
    private func defaultOption(level: Int32, name: Int32) -> Int32? {
        switch (level, name) {
        case (InetABI.IPPROTO_IP, InetABI.IP_TOS): return 0
        case (InetABI.IPPROTO_IP, InetABI.IP_TTL): return 64
        case (InetABI.IPPROTO_IPV6, InetABI.IPV6_V6ONLY) where family == SocketABI.AF_INET6: return 0
        case (InetABI.IPPROTO_IPV6, InetABI.IPV6_UNICAST_HOPS) where family == SocketABI.AF_INET6: return 64
        case (InetABI.IPPROTO_TCP, _) where isStream:
            switch name {
            case InetABI.TCP_NODELAY, InetABI.TCP_CORK, InetABI.TCP_QUICKACK, InetABI.TCP_USER_TIMEOUT: return 0
            case InetABI.TCP_MAXSEG: return 536
            case InetABI.TCP_KEEPIDLE: return 7200
            case InetABI.TCP_KEEPINTVL: return 75
            case InetABI.TCP_KEEPCNT: return 9
            default: return nil
            }
        default:
            return nil
        }
    }

    /// getsockopt(2) at IPPROTO_IP, IPPROTO_IPV6 and IPPROTO_TCP: what was set, or Linux's default.
    override func protocolOption(level: Int32, name: Int32) throws(SyscallError) -> [UInt8] {
        // ip_getsockopt: another protocol's level is EOPNOTSUPP, an unknown option ENOPROTOOPT.
        guard hasLevel(level) else { throw .eopnotsupp }
        guard let fallback = defaultOption(level: level, name: name) else { throw .enoprotoopt }
        let value = Self.withConnectionLock {
            level == InetABI.IPPROTO_IPV6 && name == InetABI.IPV6_V6ONLY ? (v6Only ? 1 : 0)
                : protocolOptions[Self.optionKey(level, name)] ?? fallback
        }
        return SocketFile.intBytes(value)
    }

    /// setsockopt(2) at those levels, with the ranges do_tcp_setsockopt and do_ip_setsockopt check.
    override func setProtocolOption(level: Int32, name: Int32, value bytes: [UInt8]) throws(SyscallError) {
        guard defaultOption(level: level, name: name) != nil else { throw .enoprotoopt }
        guard bytes.count >= 4 else { throw .einval }
        var value = bytes.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        switch (level, name) {
        case (InetABI.IPPROTO_TCP, InetABI.TCP_KEEPIDLE):
            guard value >= 1, value <= InetABI.maximumKeepIdle else { throw .einval }
        case (InetABI.IPPROTO_TCP, InetABI.TCP_KEEPINTVL):
            guard value >= 1, value <= InetABI.maximumKeepInterval else { throw .einval }
        case (InetABI.IPPROTO_TCP, InetABI.TCP_KEEPCNT):
            guard value >= 1, value <= InetABI.maximumKeepCount else { throw .einval }
        case (InetABI.IPPROTO_TCP, InetABI.TCP_USER_TIMEOUT):
            guard value >= 0 else { throw .einval }
        case (InetABI.IPPROTO_TCP, InetABI.TCP_MAXSEG):
            guard value == 0 || (value >= 88 && value <= 32767) else { throw .einval }
            if value == 0 { value = 536 }
        case (InetABI.IPPROTO_TCP, _):
            value = value != 0 ? 1 : 0
        case (InetABI.IPPROTO_IP, InetABI.IP_TTL), (InetABI.IPPROTO_IPV6, InetABI.IPV6_UNICAST_HOPS):
            guard value >= -1, value <= 255, value != 0 || level == InetABI.IPPROTO_IPV6 else { throw .einval }
            if value == -1 { value = 64 }
        case (InetABI.IPPROTO_IP, InetABI.IP_TOS):
            value &= 0xff
        default:
            break
        }
        try Self.withConnectionLock { () throws(SyscallError) in
            if level == InetABI.IPPROTO_IPV6, name == InetABI.IPV6_V6ONLY {
                guard local == nil else { throw .einval }
                v6Only = value != 0
                return
            }
            protocolOptions[Self.optionKey(level, name)] = value
        }
    }
}

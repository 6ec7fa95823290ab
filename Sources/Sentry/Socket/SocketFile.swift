import Glibc
import State
import Synchronization

/// What every socket's SOL_SOCKET options remember (struct sock's fields
/// that socket(7) exposes). Buffer sizes are kept doubled, as Linux stores
/// them; timeouts in nanoseconds, 0 meaning none.
struct SocketOptions: SavableStruct, Sendable {
    static var savedTypeName: String { "socket.Options" }

    var sendBuffer = SocketABI.defaultBufferSize
    var receiveBuffer = SocketABI.defaultBufferSize
    var receiveTimeout: Int64 = 0
    var sendTimeout: Int64 = 0
    var lingerOn: Int32 = 0
    var lingerSeconds: Int32 = 0
    /// Boolean options only remembered and reported (SO_REUSEADDR, SO_KEEPALIVE, SO_PASSCRED, ...), by number.
    var flags: [Int32: Int32] = [:]

    init() {}

    func save(to sink: inout SaveSink) throws {
        try sink.save("sendBuffer", sendBuffer)
        try sink.save("receiveBuffer", receiveBuffer)
        try sink.save("receiveTimeout", receiveTimeout)
        try sink.save("sendTimeout", sendTimeout)
        try sink.save("lingerOn", lingerOn)
        try sink.save("lingerSeconds", lingerSeconds)
        try sink.save("flags", flags)
    }

    init(from source: inout LoadSource) throws {
        sendBuffer = try source.load("sendBuffer")
        receiveBuffer = try source.load("receiveBuffer")
        receiveTimeout = try source.load("receiveTimeout")
        sendTimeout = try source.load("sendTimeout")
        lingerOn = try source.load("lingerOn")
        lingerSeconds = try source.load("lingerSeconds")
        flags = try source.load("flags")
        try ImageValidation.require(sendBuffer > 0 && receiveBuffer > 0 && receiveTimeout >= 0 && sendTimeout >= 0,
                                    field: "sendBuffer", "invalid socket buffer sizes or timeouts")
    }

    /// The boolean options socket(7) lets any socket set and read back.
    static let remembered: Set<Int32> = [
        SocketABI.SO_DEBUG, SocketABI.SO_REUSEADDR, SocketABI.SO_DONTROUTE, SocketABI.SO_BROADCAST,
        SocketABI.SO_KEEPALIVE, SocketABI.SO_OOBINLINE, SocketABI.SO_REUSEPORT, SocketABI.SO_PASSCRED,
    ]

    func flag(_ option: Int32) -> Bool { (flags[option] ?? 0) != 0 }
}

/// A message handed to a socket by write, send, sendto or sendmsg.
struct OutgoingMessage {
    var data: [UInt8]
    var rights: [FileDescription] = []
    /// SCM_CREDENTIALS the sender gave explicitly.
    var credentials: SocketCredentials?
    /// sendto's or msg_name's destination, as the caller passed it (raw sockaddr bytes).
    var address: [UInt8]?
    var flags: UInt32 = 0
}

/// A socket (Linux's struct socket and its file): the file side every
/// family shares — read and write as receive and send, fstat's S_IFSOCK,
/// readiness through one wait queue, the SOL_SOCKET options — with the
/// protocol operations (bind, connect, send, ...) left to each family's
/// subclass. Unknown operations answer EOPNOTSUPP, as sock_no_* do.
class SocketFile: FileDescription, @unchecked Sendable { // `options` guarded by FileDescription.lock
    /// An int option's value as getsockopt copies it out, for every family.
    static func intBytes(_ value: Int32) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    /// A sockaddr's sa_family, read little-endian (0, AF_UNSPEC, when shorter than the field).
    static func addressFamily(of address: [UInt8]) -> UInt16 {
        guard address.count >= SocketABI.familySize else { return 0 }
        return UInt16(address[0]) | UInt16(address[1]) << 8
    }

    override class var savedTypeName: String { "socket.File" }
    override class var notSaved: Set<String> { super.notSaved.union(["queue"]) }

    private(set) var family: Int32 = 0
    private(set) var socketType: Int32 = 0
    private(set) var protocolNumber: Int32 = 0
    var options = SocketOptions()
    private(set) var inodeNumber: UInt64 = 0
    /// Where readers, writers, pollers and epoll items of this socket wait:
    /// announced on arrivals, room, connections and hang-ups. Host-only.
    let queue = WaitQueue()

    /// A leaf.
    private static let inodeCounter = Mutex<UInt64>(1)

    required init() { super.init() }

    init(family: Int32, type: Int32, protocol protocolNumber: Int32, flags: UInt32) {
        self.family = family
        self.socketType = type
        self.protocolNumber = protocolNumber
        super.init(location: nil, flags: LinuxFile.readWrite | (flags & LinuxFile.nonBlocking))
        inodeNumber = Self.inodeCounter.withLock { next in
            defer { next += 1 }
            return next
        }
    }

    override func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("family", family)
        try sink.save("socketType", socketType)
        try sink.save("protocolNumber", protocolNumber)
        try sink.save("options", lock.withLock { _ in options })
        try sink.save("inodeNumber", inodeNumber)
    }

    override func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        family = try source.load("family")
        socketType = try source.load("socketType")
        protocolNumber = try source.load("protocolNumber")
        options = try source.load("options")
        inodeNumber = try source.load("inodeNumber")
        let loaded = inodeNumber
        Self.inodeCounter.withLock { $0 = max($0, loaded == .max ? loaded : loaded + 1) }
    }

    var isStream: Bool { socketType == SocketABI.SOCK_STREAM }
    var isDatagram: Bool { socketType == SocketABI.SOCK_DGRAM }

    // MARK: Protocol operations (each family overrides what it has)

    func bind(_ address: [UInt8], task: Task) throws(SyscallError) { throw .eopnotsupp }
    func listen(backlog: Int32, task: Task) throws(SyscallError) { throw .eopnotsupp }
    /// Connects; `waiter` is nil for a non-blocking socket.
    func connect(_ address: [UInt8], task: Task, waiter: Waiter?) throws(SyscallError) { throw .eopnotsupp }
    /// The next pending connection as a new socket with `flags` (O_NONBLOCK); `waiter` nil: EAGAIN if none.
    func accept(flags: UInt32, waiter: Waiter?) throws(SyscallError) -> SocketFile { throw .eopnotsupp }
    func shutdown(how: Int32) throws(SyscallError) { throw .eopnotsupp }
    /// getsockname's address (raw sockaddr bytes, its length the length Linux reports).
    func localAddress() throws(SyscallError) -> [UInt8] { throw .eopnotsupp }
    func peerAddress() throws(SyscallError) -> [UInt8] { throw .eopnotsupp }
    /// Sends `message` for `task` (nil when unknown: a write through
    /// splice), taking over its files' references; returns the bytes taken;
    /// `waiter` is nil for a non-blocking send. EPIPE is the caller's to signal.
    func send(_ message: OutgoingMessage, task: Task?, waiter: Waiter?) throws(SyscallError) -> Int {
        throw .eopnotsupp
    }

    /// Receives up to `count` bytes with recvmsg's `flags`; `waiter` is nil
    /// for a non-blocking receive. The caller owns the files received.
    func receive(count: Int, flags: UInt32, waiter: Waiter?) throws(SyscallError) -> SocketQueue.Received {
        throw .eopnotsupp
    }

    /// A family's own option at SOL_SOCKET (SO_PEERCRED, SO_ACCEPTCONN, SO_ERROR), or nil.
    func familyOption(_ name: Int32) throws(SyscallError) -> [UInt8]? { nil }

    /// getsockopt at a protocol's level (IPPROTO_TCP, ...): none by default (sock_no_getsockopt).
    func protocolOption(level: Int32, name: Int32) throws(SyscallError) -> [UInt8] { throw .eopnotsupp }

    func setProtocolOption(level: Int32, name: Int32, value: [UInt8]) throws(SyscallError) { throw .eopnotsupp }

    /// The sockaddr recvfrom and recvmsg report for a message's stored sender address (a unix name by default).
    func senderAddress(_ stored: [UInt8]) -> [UInt8] { UnixAddress.encode(stored) }

    // MARK: Blocking

    /// The host deadline of a blocking receive or send, from SO_RCVTIMEO or
    /// SO_SNDTIMEO; for a call re-entered after the checkpoint's pause, what
    /// remained of it.
    func deadline(sending: Bool) -> Int64? {
        let timeout = lock.withLock { _ in sending ? options.sendTimeout : options.receiveTimeout }
        guard timeout > 0 else { return nil }
        if let kept = Task.current?.takeReenteredTimeout() { return kept }
        return Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingReportingOverflow(timeout).partialValue
    }

    /// Tries `attempt` until it gives a value, waiting on `queue` for
    /// `events` between tries: EAGAIN without a waiter (non-blocking) or when
    /// the deadline passes; interrupted, ERESTARTSYS, or EINTR when a
    /// timeout was set (sock_intr_errno: such a call is never restarted).
    /// The checkpoint's pause is no signal: a timed call it interrupts
    /// keeps the rest of its timeout and restarts (ERESTARTNOHAND, EINTR
    /// still should a handler run before it is re-entered).
    func waitUntil<T>(_ events: PollEvents, on queue: WaitQueue, waiter: Waiter?, deadline: Int64?,
                      _ attempt: () throws(SyscallError) -> T?) throws(SyscallError) -> T {
        var entry: WaitEntry?
        defer { if let entry { queue.unregister(entry) } }
        while true {
            waiter?.reset()
            if let value = try attempt() { return value }
            guard let waiter else { throw .eagain }
            if entry == nil {
                let registered = waiter.entry(for: events.union(.unmaskable).union(.readHangUp))
                queue.register(registered)
                entry = registered
                continue
            }
            let woken: Bool
            do {
                woken = try waiter.block(untilHostMonotonic: deadline)
            } catch .erestartsys where deadline != nil {
                guard let deadline, let task = Task.current, !task.isInterruptedBySignal else { throw .eintr }
                task.keepTimeoutForRestart(hostDeadline: deadline)
                throw .erestartnohand
            }
            if !woken { throw .eagain }
        }
    }

    // MARK: The file side

    override var isSeekable: Bool { false }

    override func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        let received = try receive(count: count, flags: 0, waiter: waiter)
        for file in received.rights { file.releaseReference() }
        return received.data
    }

    override func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        guard position == nil else { throw .espipe }
        return try send(OutgoingMessage(data: bytes), task: nil, waiter: waiter)
    }

    override func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?, by task: Task) throws(SyscallError) -> Int {
        guard position == nil else { throw .espipe }
        return try send(OutgoingMessage(data: bytes), task: task, waiter: waiter)
    }

    override func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .espipe }

    override func truncate(to length: Int64) throws(SyscallError) { throw .einval }

    /// sockfs's inode: S_IFSOCK with mode 0777, device 0:8.
    override func attributes() throws(SyscallError) -> FileAttributes {
        var result = FileAttributes()
        result.device = DeviceNumber.make(major: 0, minor: 8)
        result.inodeNumber = inodeNumber
        result.mode = FileType.socket.rawValue | 0o777
        result.blockSize = 4096
        return result
    }

    override var supportsPoll: Bool { true }

    override func eventRegister(_ entry: WaitEntry) { queue.register(entry) }

    override func eventUnregister(_ entry: WaitEntry) { queue.unregister(entry) }
}

import Synchronization

/// The sandbox's loopback network (`lo` with 127.0.0.0/8 and ::1, as
/// gVisor's `--network=none` gives a container): the port table of every
/// bound AF_INET and AF_INET6 socket, one per protocol, where bind finds
/// conflicts, connect finds listeners and sendto finds receivers. Sockets
/// save their own endpoints and enter the table again after a restore, so
/// the table itself is not saved.
enum LoopbackStack {
    struct Table {
        /// Bound sockets by `key(type:port:)`.
        var bound: [UInt32: [InetSocket]] = [:]
        /// Where the next ephemeral port search starts.
        var nextEphemeral = InetABI.ephemeralPorts.lowerBound

        static func key(type: Int32, port: UInt16) -> UInt32 {
            UInt32(truncatingIfNeeded: type) << 16 | UInt32(port)
        }

        func sockets(type: Int32, port: UInt16) -> [InetSocket] { bound[Self.key(type: type, port: port)] ?? [] }

        mutating func insert(_ socket: InetSocket, type: Int32, port: UInt16) {
            bound[Self.key(type: type, port: port), default: []].append(socket)
        }

        mutating func remove(_ socket: InetSocket, type: Int32, port: UInt16) {
            let key = Self.key(type: type, port: port)
            bound[key]?.removeAll { $0 === socket }
            if bound[key]?.isEmpty == true { bound[key] = nil }
        }

        /// inet_csk_find_open_port: the first port of the ephemeral range no socket of `type` holds.
        mutating func ephemeralPort(type: Int32) -> UInt16? {
            let range = InetABI.ephemeralPorts
            let count = Int(range.upperBound - range.lowerBound) + 1
            var port = nextEphemeral
            for _ in 0..<count {
                let candidate = port
                port = candidate >= range.upperBound ? range.lowerBound : candidate + 1
                if bound[Self.key(type: type, port: candidate)] == nil {
                    nextEphemeral = port
                    return candidate
                }
            }
            return nil
        }
    }

    /// The lock of the table and of every inet socket's connection state.
    /// Above FileDescription.lock (a socket's options are read under it),
    /// which therefore never holds it, and above SocketQueue.lock; calls no
    /// wait queue (notifications after it is let go).
    static let table = Mutex(Table())
}

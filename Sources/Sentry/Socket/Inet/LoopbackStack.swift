import State
import Synchronization

/// A kernel's loopback network (`lo` with 127.0.0.0/8 and ::1, as
/// gVisor's `--network=none` gives a container): the port table of every
/// bound AF_INET and AF_INET6 socket, one per protocol, where bind finds
/// conflicts, connect finds listeners and sendto finds receivers. Each
/// kernel has its own (`Kernel.loopback`), so a kernel restored in the
/// process of a discarded one (the save/restore test mode) never meets the
/// discarded kernel's sockets. Sockets save their own endpoints and enter
/// their kernel's table again after a restore, so the table itself is not
/// saved, only where the ephemeral port search goes on.
final class LoopbackStack: @unchecked Sendable { // `table` guarded by `LoopbackStack.lock`
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

    /// The lock of every stack's table and of every inet socket's
    /// connection state (one lock: a family's sockets share it, see
    /// ConnectionLocking; it holds no state of its own). Above
    /// FileDescription.lock (a socket's options are read under it), which
    /// therefore never holds it, and above SocketQueue.lock; calls no wait
    /// queue (notifications after it is let go).
    static let lock = Mutex(())

    private var table = Table()

    init() {}

    /// A restored kernel's stack: the ephemeral port search goes on where it stopped.
    init(nextEphemeral: UInt16) throws {
        try ImageValidation.require(InetABI.ephemeralPorts.contains(nextEphemeral), field: "loopbackNextEphemeral",
                                    "ephemeral port \(nextEphemeral) out of range")
        table.nextEphemeral = nextEphemeral
    }

    /// Runs `body` on the table, holding `lock`.
    func withTable<R: Sendable, E: Error>(_ body: (inout Table) throws(E) -> R) throws(E) -> R {
        try Self.lock.withLock { _ throws(E) -> R in try body(&table) }
    }

    /// Where the ephemeral port search goes on, for a checkpoint.
    var nextEphemeral: UInt16 { withTable { $0.nextEphemeral } }

    /// A discarded kernel's sockets leave (they would otherwise live on with
    /// it, never closed).
    func discard() {
        withTable { $0 = Table() }
    }
}

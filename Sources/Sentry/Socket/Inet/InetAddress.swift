import State

/// An IPv4 or IPv6 socket address as the loopback stack keeps it: the
/// address in IPv6 form (IPv4 as ::ffff:a.b.c.d, as a dual-stack socket
/// sees it) and the port in host order.
struct InetEndpoint: SavableStruct, Hashable, Sendable {
    static var savedTypeName: String { "inet.Endpoint" }

    var address: [UInt8]
    var port: UInt16

    init(address: [UInt8], port: UInt16) {
        self.address = address
        self.port = port
    }

    /// An IPv4 address's mapped form.
    init(ipv4: [UInt8], port: UInt16) {
        self.init(address: [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + ipv4.prefix(4), port: port)
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("address", address)
        try sink.save("port", port)
    }

    init(from source: inout LoadSource) throws {
        address = try source.load("address")
        port = try source.load("port")
        try ImageValidation.require(address.count == 16, field: "address", "\(address.count)-byte address")
    }

    static let ipv6Any = InetEndpoint(address: [UInt8](repeating: 0, count: 16), port: 0)
    static let ipv4Any = InetEndpoint(ipv4: [0, 0, 0, 0], port: 0)
    static let ipv4Loopback = InetEndpoint(ipv4: [127, 0, 0, 1], port: 0)
    static let ipv6Loopback = InetEndpoint(address: [UInt8](repeating: 0, count: 15) + [1], port: 0)

    var isIPv4: Bool { address.prefix(12).elementsEqual([UInt8](repeating: 0, count: 10) + [0xff, 0xff]) }
    var ipv4: [UInt8] { Array(address.suffix(4)) }
    var isWildcard: Bool { address == Self.ipv6Any.address || address == Self.ipv4Any.address }
    /// 127.0.0.0/8 or ::1: what lo answers to.
    var isLoopback: Bool { isIPv4 ? address[12] == 127 : address == Self.ipv6Loopback.address }

    func with(port: UInt16) -> InetEndpoint { InetEndpoint(address: address, port: port) }

    /// Whether a socket bound here receives what is sent to `destination`
    /// (the ports aside): the same address, 0.0.0.0 for any IPv4, :: for
    /// any IPv6 and, unless `v6Only`, any IPv4 too.
    func accepts(_ destination: [UInt8], v6Only: Bool) -> Bool {
        if address == destination { return true }
        if address == Self.ipv4Any.address { return destination.count == 16 && destination[10] == 0xff
            && destination[11] == 0xff && destination.prefix(10).allSatisfy { $0 == 0 } }
        if address == Self.ipv6Any.address {
            return !v6Only || !InetEndpoint(address: destination, port: 0).isIPv4
        }
        return false
    }
}

/// struct sockaddr_in and sockaddr_in6 as bind, connect and sendto take
/// them and getsockname returns them (ip(7), ipv6(7)), with the checks and
/// errnos of inet_bind, inet6_bind and their connects.
enum InetAddress {
    /// What an address argument meant.
    enum Parsed {
        case endpoint(InetEndpoint)
        /// AF_UNSPEC: connect's "dissolve the association".
        case unspecified
    }

    /// Parses `raw` for a socket of `family`: EINVAL when too short, EAFNOSUPPORT
    /// for another family (AF_UNSPEC where `allowUnspecified`), an IPv4-mapped
    /// address on a V6ONLY socket EINVAL.
    static func parse(_ raw: [UInt8], family: Int32, v6Only: Bool,
                      allowUnspecified: Bool) throws(SyscallError) -> Parsed {
        let given = SocketFile.addressFamily(of: raw)
        if family == SocketABI.AF_INET {
            guard raw.count >= InetABI.inetAddressSize else { throw .einval }
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            let endpoint = InetEndpoint(ipv4: Array(raw[4..<8]), port: port)
            if given == UInt16(SocketABI.AF_INET) { return .endpoint(endpoint) }
            // inet_bind tolerates AF_UNSPEC with INADDR_ANY, as old programs pass it.
            if given == 0, allowUnspecified { return .unspecified }
            if given == 0, endpoint.isWildcard { return .endpoint(endpoint) }
            throw .eafnosupport
        }
        if given == 0, allowUnspecified, raw.count >= SocketABI.familySize { return .unspecified }
        guard raw.count >= InetABI.inet6AddressMinimumSize else { throw .einval }
        guard given == UInt16(SocketABI.AF_INET6) else { throw .eafnosupport }
        let endpoint = InetEndpoint(address: Array(raw[8..<24]), port: UInt16(raw[2]) << 8 | UInt16(raw[3]))
        if endpoint.isIPv4, v6Only { throw .einval }
        return .endpoint(endpoint)
    }

    /// The sockaddr a socket of `family` reports for `endpoint`.
    static func encode(_ endpoint: InetEndpoint, family: Int32) -> [UInt8] {
        let portBytes: [UInt8] = [UInt8(truncatingIfNeeded: endpoint.port >> 8), UInt8(truncatingIfNeeded: endpoint.port)]
        if family == SocketABI.AF_INET {
            return [UInt8(SocketABI.AF_INET), 0] + portBytes + endpoint.ipv4 + [UInt8](repeating: 0, count: 8)
        }
        return [UInt8(SocketABI.AF_INET6), 0] + portBytes + [0, 0, 0, 0] + endpoint.address + [0, 0, 0, 0]
    }
}

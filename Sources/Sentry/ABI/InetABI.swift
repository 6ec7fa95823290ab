/// Linux's IPv4, IPv6, TCP and UDP socket ABI with Linux's names
/// (uapi/linux/in.h, in6.h, tcp.h; net/ipv4's sysctl defaults), as x86_64 lays it out.
enum InetABI {
    static let IPPROTO_IP: Int32 = 0
    static let IPPROTO_TCP: Int32 = 6
    static let IPPROTO_UDP: Int32 = 17
    static let IPPROTO_IPV6: Int32 = 41

    /// sizeof(struct sockaddr_in); sizeof(struct sockaddr_in6) and SIN6_LEN_RFC2133 (without sin6_scope_id).
    static let inetAddressSize = 16
    static let inet6AddressSize = 28
    static let inet6AddressMinimumSize = 24

    // IPPROTO_IP options.
    static let IP_TOS: Int32 = 1
    static let IP_TTL: Int32 = 2
    // IPPROTO_IPV6 options.
    static let IPV6_UNICAST_HOPS: Int32 = 16
    static let IPV6_V6ONLY: Int32 = 26
    // IPPROTO_TCP options.
    static let TCP_NODELAY: Int32 = 1
    static let TCP_MAXSEG: Int32 = 2
    static let TCP_CORK: Int32 = 3
    static let TCP_KEEPIDLE: Int32 = 4
    static let TCP_KEEPINTVL: Int32 = 5
    static let TCP_KEEPCNT: Int32 = 6
    static let TCP_QUICKACK: Int32 = 12
    static let TCP_USER_TIMEOUT: Int32 = 18
    /// TCP_MAX_KEEPIDLE, TCP_MAX_KEEPINTVL, TCP_MAX_KEEPCNT.
    static let maximumKeepIdle: Int32 = 32767
    static let maximumKeepInterval: Int32 = 32767
    static let maximumKeepCount: Int32 = 127

    /// net.ipv4.ip_local_port_range's default.
    static let ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// PROT_SOCK: ports below it need CAP_NET_BIND_SERVICE.
    static let privilegedPortLimit: UInt16 = 1024
    static let capNetBindService = 10
    /// The largest UDP payload over IPv4 and IPv6 (65535 less the headers).
    static let maximumDatagram = 65507
    static let maximumDatagram6 = 65527
}

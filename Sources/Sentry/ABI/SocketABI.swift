/// Linux's socket ABI with Linux's names (include/linux/socket.h,
/// include/linux/net.h, uapi/asm-generic/socket.h, uapi/linux/un.h), as
/// x86_64 lays them out.
enum SocketABI {
    // Address families.
    static let AF_UNIX: Int32 = 1
    static let AF_INET: Int32 = 2
    static let AF_INET6: Int32 = 10

    // Types; SOCK_NONBLOCK and SOCK_CLOEXEC share the type argument.
    static let SOCK_STREAM: Int32 = 1
    static let SOCK_DGRAM: Int32 = 2
    static let SOCK_RAW: Int32 = 3
    static let SOCK_SEQPACKET: Int32 = 5
    static let SOCK_TYPE_MASK: Int32 = 0xf
    static let SOCK_NONBLOCK: Int32 = Int32(bitPattern: LinuxFile.nonBlocking)
    static let SOCK_CLOEXEC: Int32 = Int32(bitPattern: LinuxFile.closeOnExec)

    // shutdown(2)'s how.
    static let SHUT_RD: Int32 = 0
    static let SHUT_WR: Int32 = 1
    static let SHUT_RDWR: Int32 = 2

    // Message flags.
    static let MSG_OOB: UInt32 = 0x1
    static let MSG_PEEK: UInt32 = 0x2
    static let MSG_CTRUNC: UInt32 = 0x8
    static let MSG_TRUNC: UInt32 = 0x20
    static let MSG_DONTWAIT: UInt32 = 0x40
    static let MSG_EOR: UInt32 = 0x80
    static let MSG_WAITALL: UInt32 = 0x100
    static let MSG_NOSIGNAL: UInt32 = 0x4000
    static let MSG_MORE: UInt32 = 0x8000
    static let MSG_WAITFORONE: UInt32 = 0x10000
    static let MSG_CMSG_CLOEXEC: UInt32 = 0x4000_0000

    // Socket options (level SOL_SOCKET).
    static let SOL_SOCKET: Int32 = 1
    static let SO_DEBUG: Int32 = 1
    static let SO_REUSEADDR: Int32 = 2
    static let SO_TYPE: Int32 = 3
    static let SO_ERROR: Int32 = 4
    static let SO_DONTROUTE: Int32 = 5
    static let SO_BROADCAST: Int32 = 6
    static let SO_SNDBUF: Int32 = 7
    static let SO_RCVBUF: Int32 = 8
    static let SO_KEEPALIVE: Int32 = 9
    static let SO_OOBINLINE: Int32 = 10
    static let SO_LINGER: Int32 = 13
    static let SO_REUSEPORT: Int32 = 15
    static let SO_PASSCRED: Int32 = 16
    static let SO_PEERCRED: Int32 = 17
    static let SO_RCVLOWAT: Int32 = 18
    static let SO_SNDLOWAT: Int32 = 19
    static let SO_RCVTIMEO: Int32 = 20
    static let SO_SNDTIMEO: Int32 = 21
    static let SO_ACCEPTCONN: Int32 = 30
    static let SO_SNDBUFFORCE: Int32 = 32
    static let SO_RCVBUFFORCE: Int32 = 33
    static let SO_PROTOCOL: Int32 = 38
    static let SO_DOMAIN: Int32 = 39

    // Control messages.
    static let SCM_RIGHTS: Int32 = 1
    static let SCM_CREDENTIALS: Int32 = 2
    /// SCM_MAX_FD: the most descriptors one SCM_RIGHTS message carries.
    static let maximumRightsPerMessage = 253
    /// net.core.optmem_max's default (sysctl_optmem_max): sendmsg's control
    /// buffer comes from sock_kmalloc, which refuses this size or more.
    static let sysctl_optmem_max: UInt64 = 131_072

    /// sizeof(sa_family_t).
    static let familySize = 2
    /// sizeof(struct sockaddr_un).
    static let unixAddressSize = 110
    /// sizeof(struct sockaddr_un.sun_path).
    static let unixPathSize = 108
    /// struct msghdr: 56 bytes; struct mmsghdr adds msg_len (and padding).
    static let messageHeaderSize = 56
    static let multipleMessageHeaderSize = 64
    /// struct cmsghdr: cmsg_len (size_t), cmsg_level, cmsg_type.
    static let controlHeaderSize = 16
    /// struct ucred: pid, uid, gid.
    static let credentialsSize = 12
    /// struct linger: l_onoff, l_linger.
    static let lingerSize = 8
    /// struct timeval.
    static let timevalSize = 16
    /// SOMAXCONN (net.core.somaxconn's default since 5.4).
    static let maximumBacklog: Int32 = 4096

    /// net.core.wmem_default and rmem_default, wmem_max and rmem_max; SOCK_MIN_SNDBUF/RCVBUF.
    static let defaultBufferSize = 212_992
    static let maximumBufferSize = 212_992
    static let minimumSendBuffer = 4608
    static let minimumReceiveBuffer = 2304

    /// CMSG_ALIGN: control messages are aligned to sizeof(long).
    static func controlAlign(_ length: Int) -> Int { (length + 7) & ~7 }
}

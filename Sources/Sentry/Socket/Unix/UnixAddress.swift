import Synchronization

/// struct sockaddr_un as bind, connect and sendto take it and getsockname
/// returns it (unix(7)): a path name ends at its first NUL, an abstract
/// name starts with one and is as long as the address length says, an
/// empty one (just the family) asks bind to autobind.
enum UnixAddress {
    enum Parsed: Equatable {
        case unnamed
        case abstract([UInt8])
        case path(String)
    }

    /// unix_validate_addr: EINVAL for a length outside the structure or another family.
    static func parse(_ address: [UInt8], allowEmpty: Bool) throws(SyscallError) -> Parsed {
        guard address.count >= SocketABI.familySize, address.count <= SocketABI.unixAddressSize,
              SocketFile.addressFamily(of: address) == UInt16(SocketABI.AF_UNIX) else { throw .einval }
        let path = address[SocketABI.familySize...]
        guard let first = path.first else {
            if allowEmpty { return .unnamed }
            throw .einval
        }
        if first == 0 { return .abstract(Array(path)) }
        let name = path.prefix { $0 != 0 }
        return .path(String(decoding: name, as: UTF8.self))
    }

    /// The address getsockname reports for `name`: a path with its NUL
    /// (unix_mkname's length), an abstract name as bound, the family alone if unbound.
    static func encode(_ name: [UInt8]?) -> [UInt8] {
        var address: [UInt8] = [UInt8(SocketABI.AF_UNIX), 0]
        guard let name else { return address }
        address += name
        if name.first != 0 { address.append(0) }
        return address
    }

    /// unix_autobind's names: a NUL and five hex digits, the first free one after the last given.
    static func autobindName(isFree: ([UInt8]) -> Bool) -> [UInt8]? {
        for _ in 0..<0x100000 {
            let number = next.withLock { value -> UInt32 in
                defer { value = (value + 1) & 0xfffff }
                return value
            }
            var digits = Array(String(number, radix: 16).utf8)
            while digits.count < 5 { digits.insert(UInt8(ascii: "0"), at: 0) }
            let name = [0] + digits
            if isFree(name) { return name }
        }
        return nil
    }

    /// A leaf.
    private static let next = Mutex<UInt32>(0)
}

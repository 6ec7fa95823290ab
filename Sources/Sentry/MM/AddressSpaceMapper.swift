/// What the MM asks of the host side of an address space: put MemoryFile
/// ranges into the stub, take them out, change their protection, end it. The
/// platform's address space adopts this (see `AddressSpace+Mapper.swift`);
/// tests use a recording fake.
public protocol AddressSpaceMapper: AnyObject, Sendable {
    func map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection) throws(SyscallError)
    func unmap(address: UInt64, length: UInt64) throws(SyscallError)
    func protect(address: UInt64, length: UInt64, protection: Protection) throws(SyscallError)
    /// Takes out everything the application may map (the whole user range).
    func unmapAll() throws(SyscallError)
    /// Ends the host address space (the MM's last user left).
    func release()
    /// Applies `changes` in order, as `map` and `protect` would; a platform
    /// may make several in one round trip to its stub. Returns how many were
    /// applied before one failed, and that failure (nil when all were).
    func apply(_ changes: [StubChange]) -> (applied: Int, failure: SyscallError?)
}

/// One change `AddressSpaceMapper.apply` makes.
public enum StubChange: Sendable, Equatable {
    case map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection)
    case protect(address: UInt64, length: UInt64, protection: Protection)
}

extension AddressSpaceMapper {
    /// One `map` or `protect` call per change.
    public func apply(_ changes: [StubChange]) -> (applied: Int, failure: SyscallError?) {
        for (index, change) in changes.enumerated() {
            do throws(SyscallError) {
                switch change {
                case .map(let address, let length, let fileOffset, let protection):
                    try map(address: address, length: length, fileOffset: fileOffset, protection: protection)
                case .protect(let address, let length, let protection):
                    try protect(address: address, length: length, protection: protection)
                }
            } catch {
                return (index, error)
            }
        }
        return (changes.count, nil)
    }
}

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
}

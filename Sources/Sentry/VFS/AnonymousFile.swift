/// A file with no name in any filesystem (Linux's anon_inode: epoll,
/// eventfd, signalfd, timerfd): not seekable, fstat shows mode 0600 with no
/// file type, and read or write is EINVAL unless the kind defines it.
open class AnonymousFile: FileDescription, @unchecked Sendable { // no state of its own
    /// alloc_anon_inode's i_mode (S_IRUSR | S_IWUSR), without a file type.
    static let inodeMode: UInt32 = 0o600

    public required init() { super.init() }

    /// Every anonymous file is opened read-write (anon_inode_getfile's O_RDWR).
    init(flags: UInt32) { super.init(location: nil, flags: LinuxFile.readWrite | flags) }

    override open var isSeekable: Bool { false }

    override open func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        throw .einval
    }

    override open func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        throw .einval
    }

    override open func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .espipe }

    override open func attributes() throws(SyscallError) -> FileAttributes {
        var attributes = FileAttributes()
        attributes.mode = Self.inodeMode
        return attributes
    }
}

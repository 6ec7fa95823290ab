/// An O_PATH descriptor: names a place for *at calls, fchdir and fstat, and
/// refuses I/O with EBADF as Linux's path-only files do.
public final class PathFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "vfs.PathFile" }

    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        throw .ebadf
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        throw .ebadf
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .ebadf }

    override public func readDirectory(capacity: Int) throws(SyscallError) -> [UInt8] { throw .ebadf }

    override public func truncate(to length: Int64) throws(SyscallError) { throw .ebadf }

    override public func readableByteCount() throws(SyscallError) -> Int { throw .ebadf }
}

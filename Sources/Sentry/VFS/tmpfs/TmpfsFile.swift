/// An open tmpfs regular file.
public final class TmpfsFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "tmpfs.File" }

    private var file: TmpfsRegularFile? { location?.dentry.inode as? TmpfsRegularFile }

    override public func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] {
        guard let file else { throw .ebadf }
        guard position >= 0 else { throw .einval }
        return file.read(count: count, at: position)
    }

    override public func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        guard let file else { throw .ebadf }
        return try file.write(bytes, at: position, append: append)
    }

    override public var isMappable: Bool { true }
}

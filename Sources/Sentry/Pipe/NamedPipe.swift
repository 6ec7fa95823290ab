import State

/// A FIFO made by mknod(2)/mkfifo(3): an inode whose opens share one Sentry
/// pipe. On tmpfs it is an ordinary node; on a host mount it exists only in
/// the sandbox (a name the hostfs directory keeps beside the host's files),
/// so no host FIFO is ever opened. The pipe, bytes in flight included, is
/// saved with the inode.
public final class NamedPipeInode: Inode, @unchecked Sendable { // attributes guarded by Inode.lock; `pipe` is set once
    override public class var savedTypeName: String { "pipe.NamedPipe" }

    public private(set) var pipe = Pipe.makeNamed()

    override public var isSandboxNode: Bool { true }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("pipe", pipe)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        pipe = try source.load("pipe")
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.blockSize = 4096
            return result
        }
    }

    /// fifo_open: counts the ends this description has; the open syscall
    /// then waits for the partner of a blocking one-ended open.
    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        try Self.open(pipe, at: location, flags: flags)
    }

    /// A new description of the FIFO whose pipe is `pipe` (also a FIFO the rootfs has on the host).
    static func open(_ pipe: Pipe, at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        let accessMode = flags & LinuxFile.accessModeMask
        let reads = accessMode == LinuxFile.readOnly || accessMode == LinuxFile.readWrite
        let writes = accessMode == LinuxFile.writeOnly || accessMode == LinuxFile.readWrite
        guard reads || writes else { throw .einval }
        let seen = try pipe.openEnds(read: reads, write: writes, nonBlocking: flags & LinuxFile.nonBlocking != 0)
        let file = PipeFile(fifo: pipe, location: location, reads: reads, writes: writes, flags: flags)
        file.writerOpensSeen = seen
        return file
    }
}

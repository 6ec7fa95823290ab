import State

/// A FIFO made by mknod(2)/mkfifo(3): an inode whose opens share one Sentry
/// pipe. On tmpfs it is an ordinary node; on a host mount it exists only in
/// the sandbox (a name the hostfs directory keeps beside the host's files),
/// so no host FIFO is ever opened. The pipe, bytes in flight included, is
/// saved with the inode.
public final class NamedPipeInode: Inode, @unchecked Sendable { // attributes guarded by Inode.lock; `pipe` is set once
    override public class var savedTypeName: String { "pipe.NamedPipe" }

    public private(set) var pipe = Pipe.makeNamed()
    /// Stands for an anonymous pipe (Linux's pipefs inode): its opens neither
    /// wait for a partner nor fail with ENXIO (fifo_open's is_pipe).
    private(set) var isAnonymousPipe = false

    override public var isSandboxNode: Bool { true }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("pipe", pipe)
        try sink.save("isAnonymousPipe", isAnonymousPipe)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        pipe = try source.load("pipe")
        isAnonymousPipe = try source.load("isAnonymousPipe", default: false)
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.blockSize = 4096
            return result
        }
    }

    /// The inode an anonymous pipe is opened again through (/proc/self/fd/N,
    /// /dev/stdin, bash's `<(...)` as /dev/fd/63): Linux's pipefs inode,
    /// which fifo_open opens as a FIFO on the same pipe. Its dentry is in no
    /// directory; its number is the pipe's, as fstat of either end shows.
    static func reopening(_ pipe: Pipe, filesystem: Filesystem, credentials: FileCredentials) -> NamedPipeInode {
        let inode = NamedPipeInode()
        inode.pipe = pipe
        inode.isAnonymousPipe = true
        inode.initialize(filesystem: filesystem, mode: FileType.fifo.rawValue | 0o600, uid: credentials.uid,
                         gid: credentials.gid)
        inode.inodeNumber = pipe.inodeNumber
        return inode
    }

    /// fifo_open: counts the ends this description has; the open syscall
    /// then waits for the partner of a blocking one-ended open.
    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        try Self.open(pipe, at: location, flags: flags, isAnonymousPipe: isAnonymousPipe)
    }

    /// A new description of the FIFO whose pipe is `pipe` (also a FIFO the rootfs has on the host).
    static func open(_ pipe: Pipe, at location: VirtualPath, flags: UInt32,
                     isAnonymousPipe: Bool = false) throws(SyscallError) -> FileDescription {
        let accessMode = flags & LinuxFile.accessModeMask
        let reads = accessMode == LinuxFile.readOnly || accessMode == LinuxFile.readWrite
        let writes = accessMode == LinuxFile.writeOnly || accessMode == LinuxFile.readWrite
        guard reads || writes else { throw .einval }
        let seen = try pipe.openEnds(read: reads, write: writes,
                                     nonBlocking: flags & LinuxFile.nonBlocking != 0 && !isAnonymousPipe)
        let file = PipeFile(fifo: pipe, location: location, reads: reads, writes: writes, flags: flags)
        file.writerOpensSeen = seen
        file.waitsForPartner = !isAnonymousPipe
        return file
    }
}

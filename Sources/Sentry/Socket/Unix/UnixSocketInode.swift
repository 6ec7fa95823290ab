import State

/// The inode a unix socket bound to a path makes (S_IFSOCK): on tmpfs an
/// ordinary node, on a host mount a name only the sandbox has, as a FIFO's
/// (never a host socket). connect and sendto find the socket through it;
/// once the socket is closed the name stays and refuses connections, as
/// Linux's. mknod(2) of S_IFSOCK makes one with no socket.
final class UnixSocketInode: Inode, @unchecked Sendable { // `socket` guarded by UnixSocket.namespace
    override class var savedTypeName: String { "unix.SocketInode" }

    private var socket: UnixSocket?

    override func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("socket", UnixSocket.namespace.withLock { _ in socket })
    }

    override func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        socket = try source.load("socket")
    }

    override var isSandboxNode: Bool { true }

    override func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in baseAttributes() }
    }

    func bind(_ bound: UnixSocket) {
        UnixSocket.namespace.withLock { _ in socket = bound }
    }

    func unbind(_ bound: UnixSocket) {
        UnixSocket.namespace.withLock { _ in
            if socket === bound { socket = nil }
        }
    }

    /// bind(2)'s new name at `path`: mode 0777 less the umask; EADDRINUSE if the name exists.
    static func make(at path: String, task: Task) throws(SyscallError) -> UnixSocketInode {
        let node = UnixSocketInode()
        let (start, context) = try FileSyscalls.start(task, dirfd: LinuxFile.atCurrentDirectory, path: path)
        do {
            try task.virtualFilesystem().makeSocketNode(node, at: path, from: start, context: context, mode: 0o777,
                                                        umask: task.fsContext.umask)
        } catch .eexist {
            throw .eaddrinuse
        }
        return node
    }

    /// The socket bound at `path` (connect, sendto): write permission on the
    /// inode is needed (EACCES); a name that is no socket, or whose socket
    /// is closed, refuses (ECONNREFUSED).
    static func socket(at path: String, task: Task) throws(SyscallError) -> UnixSocket {
        let (location, context) = try FileSyscalls.lookup(task, dirfd: LinuxFile.atCurrentDirectory, path: path,
                                                          follow: true, emptyPath: false)
        guard let node = location.inode as? UnixSocketInode else { throw .econnrefused }
        guard node.mayAccess(context.credentials, want: LinuxFile.mayWrite) else { throw .eacces }
        guard let socket = UnixSocket.namespace.withLock({ _ in node.socket }) else { throw .econnrefused }
        return socket
    }
}

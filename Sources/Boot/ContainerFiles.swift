import Sentry

/// The container's files as the init process sees them, for what the Loader
/// reads before the application runs (/etc/passwd): every
/// lookup goes through the Sentry's VFS with the process's root, working
/// directory and credentials, so symlinks and mounts resolve as they will
/// for the application.
struct ContainerFiles {
    let vfs: VirtualFilesystem
    let context: PathContext

    /// The whole file at `path`, up to `limit` bytes.
    func read(_ path: String, limit: Int = 1 << 30) throws(SyscallError) -> [UInt8] {
        let location = try vfs.lookup(path, from: context.workingDirectory, context: context)
        guard location.inode.type == .regular else { throw location.inode.type == .directory ? .eisdir : .eacces }
        return try vfs.openResolved(location, flags: LinuxFile.readOnly, context: context).readPrefix(limit: limit)
    }
}

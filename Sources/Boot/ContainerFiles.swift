import Sentry

/// The container's files as the init process sees them, for what the Loader
/// reads before the application runs (the executable, /etc/passwd): every
/// lookup goes through the Sentry's VFS with the process's root, working
/// directory and credentials, so symlinks and mounts resolve as they will
/// for the application.
struct ContainerFiles {
    let vfs: VirtualFilesystem
    let context: PathContext

    /// access(2)'s X_OK.
    static let executeAccess: UInt32 = 1

    /// The whole file at `path`, up to `limit` bytes.
    func read(_ path: String, limit: Int = 1 << 30) throws(SyscallError) -> [UInt8] {
        let location = try vfs.lookup(path, from: context.workingDirectory, context: context)
        guard location.inode.type == .regular else { throw location.inode.type == .directory ? .eisdir : .eacces }
        let file = try vfs.openResolved(location, flags: LinuxFile.readOnly, context: context)
        var bytes: [UInt8] = []
        while bytes.count < limit {
            let chunk = try file.read(count: min(1 << 20, limit - bytes.count), at: Int64(bytes.count), waiter: nil)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return bytes
    }

    /// execve's checks before reading the file: a regular file with execute
    /// permission (EACCES otherwise, as runc reports "permission denied").
    func checkExecutable(_ path: String) throws(LoaderError) {
        let location: VirtualPath
        do {
            location = try vfs.lookup(path, from: context.workingDirectory, context: context)
        } catch {
            throw LoaderError("cannot execute \(path): \(error)")
        }
        guard location.inode.type == .regular,
              (try? vfs.checkAccess(location, mode: ContainerFiles.executeAccess, context: context)) != nil else {
            throw LoaderError("cannot execute \(path): permission denied (EACCES)")
        }
    }

    /// Whether `path` is a regular file the process may execute.
    func isExecutableFile(_ path: String) -> Bool {
        guard let location = try? vfs.lookup(path, from: context.workingDirectory, context: context),
              location.inode.type == .regular else { return false }
        return (try? vfs.checkAccess(location, mode: ContainerFiles.executeAccess, context: context)) != nil
    }
}

/// The file syscall families, registered together: `SyscallTable.standard`
/// calls `registerFiles()`.
extension SyscallTable {
    mutating func registerFiles() {
        registerFileReadWrite()
        registerFileOpen()
        registerFileStat()
        registerFileDirectory()
        registerFileDescriptor()
        registerFilePoll()
        registerEpoll()
        registerEventFD()
        registerFileAttributes()
        registerFilePipe()
        registerFileSplice()
        registerExtendedAttributes()
        registerInotify()
    }
}

/// Helpers every file handler uses.
enum FileSyscalls {
    /// Most bytes one read or write moves through a Sentry buffer; larger
    /// requests are short, which Linux allows for any file but regular files
    /// (whose readers loop anyway).
    static let chunk = 4 << 20

    /// A path argument: EFAULT for a bad pointer, ENAMETOOLONG past PATH_MAX.
    static func path(_ task: Task, _ address: UInt64) throws(SyscallError) -> String {
        try task.copyInString(from: address, maxLength: Task.maxPathLength)
    }

    /// Where a `*at` path starts, with the walk context.
    static func start(_ task: Task, dirfd: Int32, path: String,
                      allowEmpty: Bool = false) throws(SyscallError) -> (VirtualPath, PathContext) {
        let context = try task.pathContext()
        let start = try VirtualFilesystem.start(dirfd: dirfd, table: task.fdTable, context: context, path: path,
                                                allowEmpty: allowEmpty)
        return (start, context)
    }

    /// Resolves `path` at `dirfd`; an empty path with AT_EMPTY_PATH is the dirfd itself.
    static func lookup(_ task: Task, dirfd: Int32, path: String, follow: Bool,
                       emptyPath: Bool) throws(SyscallError) -> (VirtualPath, PathContext) {
        if path.isEmpty, emptyPath {
            let context = try task.pathContext()
            if dirfd == LinuxFile.atCurrentDirectory { return (context.workingDirectory, context) }
            let file = try task.fdTable.get(dirfd)
            guard let location = file.location else { throw .ebadf }
            return (location, context)
        }
        let (start, context) = try start(task, dirfd: dirfd, path: path)
        let vfs = try task.virtualFilesystem()
        return (try vfs.lookup(path, from: start, context: context, followFinal: follow), context)
    }
}

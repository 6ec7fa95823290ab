/// What a new process runs and with what, as gVisor's CreateProcessArgs: the
/// container's init (from the spec) and, later, `runsc exec`.
public struct CreateProcessArgs {
    /// The program: a path, or a name searched in envp's PATH (as runc does; execve does not).
    public var filename: String
    public var argv: [String]
    public var envp: [String]
    /// Container path of the working directory; it must be a directory.
    public var workingDirectory: String
    public var credentials: Credentials
    public var limits: Limits
    public var umask: UInt32
    /// The descriptors the process starts with (its stdio).
    public var fdTable: FDTable
    /// The process's root; the container's root when nil.
    public var root: VirtualPath?
    /// personality(2) flags it starts with (the spec's `linux.personality`):
    /// ADDR_NO_RANDOMIZE lays it and what it execs out without randomisation.
    public var personality: UInt32

    public init(filename: String, argv: [String], envp: [String], workingDirectory: String = "/",
                credentials: Credentials, limits: Limits, umask: UInt32 = 0o022, fdTable: FDTable = FDTable(),
                root: VirtualPath? = nil, personality: UInt32 = LinuxPersonality.PER_LINUX) {
        self.filename = filename
        self.argv = argv
        self.envp = envp
        self.workingDirectory = workingDirectory
        self.credentials = credentials
        self.limits = limits
        self.umask = umask
        self.fdTable = fdTable
        self.root = root
        self.personality = personality
    }
}

extension Kernel {
    /// runc's PATH when the environment has none.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Creates a process running `args.filename` in the container (not
    /// started): resolves it in the container's VFS with the process's root,
    /// working directory and credentials, loads it through `loadExecutable`,
    /// and returns its one task. The first process created is init.
    public func createProcess(_ args: CreateProcessArgs) throws(ExecError) -> Task {
        guard let vfs else { throw ExecError(.eio, "the kernel has no filesystem") }
        let context: PathContext
        do throws(SyscallError) {
            let root: VirtualPath
            if let given = args.root { root = given } else { root = try vfs.rootPath() }
            let rootContext = PathContext(root: root, workingDirectory: root, credentials: args.credentials.fileCredentials)
            let directory = try vfs.lookup(args.workingDirectory.isEmpty ? "/" : args.workingDirectory,
                                           from: root, context: rootContext)
            guard directory.inode.type == .directory else { throw .enotdir }
            context = PathContext(root: root, workingDirectory: directory, credentials: rootContext.credentials)
        } catch {
            throw ExecError(error, "the working directory \(args.workingDirectory) cannot be used")
        }
        let (location, path) = try findExecutable(args.filename, envp: args.envp, vfs: vfs, context: context)
        let loaded = try loadExecutable(path, at: location, argv: args.argv, envp: args.envp,
                                        context: context, credentials: args.credentials,
                                        stackLimit: args.limits[.stack].soft,
                                        randomize: args.personality & LinuxPersonality.ADDR_NO_RANDOMIZE == 0)
        let task: Task
        do throws(SyscallError) {
            task = try createProcess(mm: loaded.mm, credentials: args.credentials, limits: args.limits,
                                     registers: loaded.registers, name: Kernel.commandName(path))
        } catch {
            loaded.mm.release()
            throw ExecError(error, "cannot create a process for \(args.filename)")
        }
        task.fsContext = FSContext(root: context.root, workingDirectory: context.workingDirectory, umask: args.umask)
        task.fdTable = args.fdTable
        task.controls.personality = args.personality
        return task
    }

    /// The file `name` stands for and the path exec is given for it (runc
    /// execs what it found): `name` itself when it has a slash, else the
    /// first executable regular file of that name in envp's PATH.
    func findExecutable(_ name: String, envp: [String], vfs: VirtualFilesystem,
                        context: PathContext) throws(ExecError) -> (VirtualPath, String) {
        if name.contains("/") {
            do {
                return (try vfs.lookup(name, from: context.workingDirectory, context: context), name)
            } catch {
                throw ExecError(error, "\(name): cannot execute")
            }
        }
        let path = envp.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) } ?? Kernel.defaultPath
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let base = directory.isEmpty ? "." : String(directory)
            let candidate = base.hasSuffix("/") ? base + name : base + "/" + name
            guard let location = try? vfs.lookup(candidate, from: context.workingDirectory, context: context),
                  (try? Kernel.checkExecutable(location, name: candidate, context: context)) != nil else { continue }
            return (location, candidate)
        }
        throw ExecError(.enoent, "executable \"\(name)\" not found in PATH \(path)")
    }

    /// comm after an exec: the last component of the name exec was given,
    /// cut to TASK_COMM_LEN - 1 bytes.
    static func commandName(_ filename: String) -> String {
        let base = filename.split(separator: "/").last.map(String.init) ?? filename
        return Task.commandName(base.utf8)
    }
}

extension Task {
    /// TASK_COMM_LEN less its NUL: the most bytes comm holds.
    public static let commandNameLength = 15

    /// comm from `bytes`: their first `commandNameLength`, as text of at most
    /// that many bytes (a character cut in two is dropped, not widened to
    /// U+FFFD past the limit). The one place comm is cut: exec, process
    /// creation and PR_SET_NAME.
    static func commandName(_ bytes: some Sequence<UInt8>) -> String {
        var name = String(decoding: Array(bytes.prefix(commandNameLength)), as: UTF8.self)
        while name.utf8.count > commandNameLength { name.removeLast() }
        return name
    }
}

import Platform

/// What an exec produced: a new memory image ready to run, not yet given to a task.
public struct LoadedExecutable {
    public var mm: MemoryManager
    public var registers: Registers
    /// The file that was loaded (the interpreter's, for a script), for /proc/self/exe.
    public var executablePath: String
    /// The credentials the program runs with, and whether they are raised (AT_SECURE).
    public var credentials: Credentials
    public var secure: Bool
}

/// What an exec by a running task weighs to make its new credentials
/// (bprm_creds_from_file); a process the spec starts has its credentials
/// final and passes none.
public struct ExecPrivileges: Sendable {
    public var noNewPrivileges: Bool
    public var securebits: UInt32
}

/// One loader for every exec, as gVisor's loader.Load and Linux's
/// exec_binprm: checks the file as do_open_execat does, rewrites the
/// arguments of a `#!` script as binfmt_script does and goes on with its
/// interpreter, and loads an ELF image into a new MemoryManager.
extension Kernel {
    /// BINPRM_BUF_SIZE: the bytes of a file a format looks at (the `#!` line).
    static let binaryParameterBufferSize = 256
    /// exec_binprm's `depth > 5`: a file and at most five interpreters after it.
    static let maxInterpreterDepth = 5
    /// _STK_LIM: the most argv and envp may take together is 3/4 of it.
    static let defaultStackLimit: UInt64 = 8 << 20
    /// ARG_MAX: what argv and envp may always take, whatever RLIMIT_STACK says.
    static let minimumArgumentSpace: UInt64 = 32 * Page.size
    /// ELFMAG: what an ELF file starts with.
    static let elfMagic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
    /// The largest file the loader reads into memory.
    static let maxExecutableSize = 1 << 30

    /// Loads `filename` (already found at `location`) with `argv` and `envp`
    /// into a new MemoryManager, its layout random unless `randomize` is false
    /// (ADDR_NO_RANDOMIZE). With `privileges`, the credentials change as
    /// the file (the interpreter, for a script) says: set-ID bits and
    /// capabilities. The caller's memory is untouched: a failure leaves
    /// nothing behind.
    public func loadExecutable(_ filename: String, at location: VirtualPath, argv: [String], envp: [String],
                               context: PathContext, credentials: Credentials, privileges: ExecPrivileges? = nil,
                               stackLimit: UInt64, randomize: Bool) throws(ExecError) -> LoadedExecutable {
        var argv = argv
        var file = location
        var name = filename
        for depth in 0... {
            if depth > Kernel.maxInterpreterDepth { throw ExecError(.eloop, "\(filename): too many interpreters") }
            do throws(ExecError) {
                try Kernel.checkExecutable(file, name: name, context: context)
            } catch {
                throw depth == 0 ? error : ExecError(error.errno, "\(filename): interpreter \"\(name)\": \(error.message)")
            }
            if depth == 0 { try Kernel.checkArgumentSpace(argv: argv, envp: envp, filename: filename, stackLimit: stackLimit) }
            // One open for the format check and, for an ELF file, its bytes.
            let opened = try Kernel.openExecutable(file, name: name)
            defer { opened.releaseReference() }
            let header: [UInt8]
            do {
                header = try opened.readPrefix(limit: Kernel.binaryParameterBufferSize)
            } catch {
                throw ExecError(error, "\(name): cannot read")
            }
            if header.starts(with: [0x23, 0x21]) { // "#!"
                let (interpreter, argument) = try Kernel.parseInterpreterLine(header, name: name)
                argv = [interpreter] + (argument.map { [$0] } ?? []) + [name] + argv.dropFirst()
                guard let vfs else { throw ExecError(.eio, "\(filename): the kernel has no filesystem") }
                do {
                    // An empty name (a bare "#!") walks nowhere: the working
                    // directory, which then cannot be executed (EACCES), as Linux.
                    file = interpreter.isEmpty ? context.workingDirectory
                        : try vfs.lookup(interpreter, from: context.workingDirectory, context: context)
                } catch {
                    throw ExecError(error, "\(name): interpreter \(interpreter)")
                }
                name = interpreter
                continue
            }
            guard header.starts(with: Kernel.elfMagic) else {
                throw ExecError(.enoexec, "\(name): not an executable format")
            }
            let bytes = try executableBytes(opened, name: name)
            var (newCredentials, secure) = (credentials, false)
            if let privileges {
                let attributes: FileAttributes
                do {
                    attributes = try file.inode.attributes()
                } catch {
                    throw ExecError(error, "\(name): cannot read its attributes")
                }
                (newCredentials, secure) = credentials.forExec(
                    owner: (attributes.uid, attributes.gid), mode: attributes.mode,
                    onNoSetIDMount: file.mount.flags & ProcMountTable.noSetUIDFlag != 0,
                    noNewPrivileges: privileges.noNewPrivileges, securebits: privileges.securebits)
            }
            let mm = MemoryManager(memoryFile: memoryFile)
            let path = VirtualFilesystem.pathString(of: file, root: context.root) ?? name
            do {
                let image = try ELFLoader.load(bytes, path: path, execfn: filename, argv: argv, envp: envp, into: mm,
                                               credentials: newCredentials, secure: secure, stackLimit: stackLimit,
                                               randomize: randomize) {
                    interpreter throws(ExecError) in
                    try readInterpreter(interpreter, of: path, context: context)
                }
                return LoadedExecutable(mm: mm, registers: image.registers, executablePath: path,
                                        credentials: newCredentials, secure: secure)
            } catch {
                mm.release()
                throw error
            }
        }
        throw ExecError(.eloop, "\(filename): too many interpreters")
    }

    /// load_elf_binary's open_exec of PT_INTERP: looked up from the working
    /// directory like any path, checked as an executable, read whole.
    func readInterpreter(_ interpreter: String, of path: String,
                         context: PathContext) throws(ExecError) -> (path: String, bytes: ExecutableBytes) {
        guard let vfs else { throw ExecError(.eio, "\(path): the kernel has no filesystem") }
        let location: VirtualPath
        do {
            location = try vfs.lookup(interpreter, from: context.workingDirectory, context: context)
        } catch {
            throw ExecError(error, "\(path): interpreter \(interpreter)")
        }
        try Kernel.checkExecutable(location, name: interpreter, context: context)
        let opened = try Kernel.openExecutable(location, name: interpreter)
        defer { opened.releaseReference() }
        let bytes = try executableBytes(opened, name: interpreter)
        return (VirtualFilesystem.pathString(of: location, root: context.root) ?? interpreter, bytes)
    }

    /// do_open_execat's checks: a directory or any other non-regular file, or
    /// one on a noexec mount, is EACCES; so is a file without execute permission.
    static func checkExecutable(_ location: VirtualPath, name: String, context: PathContext) throws(ExecError) {
        let inode = location.inode
        guard inode.type == .regular, location.mount.flags & ProcMountTable.noExecFlag == 0,
              inode.mayAccess(context.credentials, want: LinuxFile.mayExecute) else {
            throw ExecError(.eacces, "\(name): permission denied")
        }
    }

    /// Linux's bprm_stack_limits and copy_strings: each string (with its NUL)
    /// at most MAX_ARG_STRLEN, and all of them with their pointers at most a
    /// quarter of RLIMIT_STACK (capped at 3/4 of _STK_LIM, at least ARG_MAX).
    static func checkArgumentSpace(argv: [String], envp: [String], filename: String,
                                   stackLimit: UInt64) throws(ExecError) {
        let limit = argumentSpace(stackLimit: stackLimit)
        var total = UInt64(8 * (argv.count + envp.count))
        for string in [filename] + argv + envp {
            let size = UInt64(string.utf8.count) + 1
            guard size <= UInt64(ELFLoader.maxArgumentLength) else {
                throw ExecError(.e2big, "\(filename): an argument is longer than \(ELFLoader.maxArgumentLength) bytes")
            }
            total += size
        }
        guard total <= limit else { throw ExecError(.e2big, "\(filename): arguments take \(total) bytes, more than \(limit)") }
    }

    /// The bytes argv and envp may take with their pointers, from RLIMIT_STACK.
    static func argumentSpace(stackLimit: UInt64) -> UInt64 {
        max(min(stackLimit / 4, defaultStackLimit / 4 * 3), minimumArgumentSpace)
    }

    /// binfmt_script's reading of the first line: the interpreter, then one
    /// optional argument (the rest of the line, trimmed); ENOEXEC when there
    /// is no interpreter or its name does not fit the buffer.
    static func parseInterpreterLine(_ header: [UInt8], name: String) throws(ExecError) -> (String, String?) {
        var buffer = header + [UInt8](repeating: 0, count: max(0, binaryParameterBufferSize - header.count))
        buffer = Array(buffer.prefix(binaryParameterBufferSize))
        let space: UInt8 = 0x20, tab: UInt8 = 0x09, newline: UInt8 = 0x0a
        func isSpaceOrTab(_ byte: UInt8) -> Bool { byte == space || byte == tab }
        func isTerminator(_ byte: UInt8) -> Bool { byte == space || byte == tab || byte == 0 }
        let last = binaryParameterBufferSize - 1
        var end: Int
        if let newlineIndex = buffer.firstIndex(of: newline) {
            end = newlineIndex
        } else {
            guard let first = (2..<last).first(where: { !isSpaceOrTab(buffer[$0]) }) else {
                throw ExecError(.enoexec, "\(name): empty #! line")
            }
            guard (first..<last).contains(where: { isTerminator(buffer[$0]) }) else {
                throw ExecError(.enoexec, "\(name): the #! interpreter's name is too long")
            }
            end = last
        }
        while end > 2, isSpaceOrTab(buffer[end - 1]) { end -= 1 }
        guard let start = (2..<max(2, end)).first(where: { !isSpaceOrTab(buffer[$0]) }) else {
            throw ExecError(.enoexec, "\(name): no interpreter on the #! line")
        }
        let separator = (start..<end).first(where: { isTerminator(buffer[$0]) })
        let interpreterEnd = separator ?? end
        let interpreter = String(decoding: buffer[start..<interpreterEnd], as: UTF8.self)
        var argument: String?
        if let separator, buffer[separator] != 0,
           let argumentStart = (separator..<end).first(where: { !isSpaceOrTab(buffer[$0]) }) {
            let bytes = buffer[argumentStart..<end]
            argument = String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return (interpreter, argument)
    }

    /// The whole file in the memory file, read as the kernel does (no read
    /// permission needed): the pages the executable cache keeps of a host
    /// file at its current version, else read now (and kept, if it may be).
    func executableBytes(_ file: FileDescription, name: String) throws(ExecError) -> ExecutableBytes {
        do throws(SyscallError) {
            let identity: FileCache.Identity?
            let version: FileCache.Version
            let mappable = file as? any MappableFile
            // A file with shared mappings' stores not written back is read
            // through them, as read shows it, and not kept: the cache holds
            // host bytes by host version, which those stores do not change.
            let throughPageCache = mappable?.hasSharedPageCache == true
            if let mappable, !throughPageCache, let (hostIdentity, hostVersion) = try mappable.cacheVersion() {
                (identity, version) = (hostIdentity, hostVersion)
            } else {
                let attributes = try file.attributes()
                identity = nil
                version = FileCache.Version(size: attributes.size, modification: attributes.modificationTime,
                                                  change: attributes.changeTime)
            }
            guard version.size <= Int64(Kernel.maxExecutableSize), let size = Int(exactly: version.size) else {
                throw SyscallError.enomem
            }
            let bytes = try memoryFile.fileCache.bytes(of: identity, at: version, size: size, memoryFile: memoryFile,
                                                       source: mappable) {
                buffer throws(SyscallError) in
                if let mappable {
                    try MemoryManager.fill(buffer, from: mappable, at: 0, privately: throughPageCache)
                    return
                }
                var done = 0
                while done < buffer.count {
                    let chunk = try file.read(count: min(1 << 20, buffer.count - done), at: Int64(done), waiter: nil)
                    if chunk.isEmpty { break }
                    UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + chunk.count]).copyBytes(from: chunk)
                    done += chunk.count
                }
            }
            guard let bytes else { throw SyscallError.eio }
            return bytes
        } catch {
            throw ExecError(error, "\(name): cannot read")
        }
    }

    /// The file opened as the kernel opens it to run it (no read permission
    /// needed: an execute-only program runs), with one reference the caller
    /// releases.
    static func openExecutable(_ location: VirtualPath, name: String) throws(ExecError) -> FileDescription {
        do throws(SyscallError) {
            let file = try location.inode.open(at: location, flags: LinuxFile.readOnly)
            file.retainReference()
            return file
        } catch {
            throw ExecError(error, "\(name): cannot read")
        }
    }
}

import Platform

/// execve and execveat: the task's image is replaced by a new MM loaded
/// through `Kernel.loadExecutable`; the run loop then moves the task to a
/// new stub (Task+Run.swift).
extension SyscallTable {
    mutating func registerExec() {
        register(59) { task, args throws(SyscallError) in                                   // execve
            try Exec.execute(task, dirfd: LinuxFile.atCurrentDirectory, pathAddress: args.pointer(0),
                             argvAddress: args.pointer(1), envpAddress: args.pointer(2), flags: 0)
        }
        register(322) { task, args throws(SyscallError) in                                  // execveat
            try Exec.execute(task, dirfd: args.int(0), pathAddress: args.pointer(1), argvAddress: args.pointer(2),
                             envpAddress: args.pointer(3), flags: args.uint(4))
        }
    }
}

enum Exec {
    /// MAX_ARG_STRINGS: the most argv or envp entries counted.
    static let maxStrings = 0x7fff_ffff

    /// do_execveat_common, in its order: the file name, the flags, the file
    /// and its checks, argv and envp (EFAULT, E2BIG), then the image.
    static func execute(_ task: Task, dirfd: Int32, pathAddress: UInt64, argvAddress: UInt64, envpAddress: UInt64,
                        flags: UInt32) throws(SyscallError) -> Int64 {
        let path = try FileSyscalls.path(task, pathAddress)
        let emptyPath = flags & LinuxFile.atEmptyPath != 0
        if path.isEmpty, !emptyPath { throw .enoent }
        guard flags & ~(LinuxFile.atSymlinkNoFollow | LinuxFile.atEmptyPath) == 0 else { throw .einval }
        guard let kernel = task.kernel else { throw .eio }
        let (location, context) = try FileSyscalls.lookup(task, dirfd: dirfd, path: path,
                                                          follow: flags & LinuxFile.atSymlinkNoFollow == 0,
                                                          emptyPath: emptyPath)
        // A symlink that AT_SYMLINK_NOFOLLOW stopped at cannot be run.
        if location.inode.type == .symlink { throw .eloop }
        // The name exec records (AT_EXECFN): fd-relative names as /dev/fd/N/..., as Linux builds them.
        let filename: String
        if path.hasPrefix("/") || dirfd == LinuxFile.atCurrentDirectory {
            filename = path
        } else {
            filename = path.isEmpty ? "/dev/fd/\(dirfd)" : "/dev/fd/\(dirfd)/\(path)"
        }
        do throws(ExecError) {
            try Kernel.checkExecutable(location, name: filename, context: context)
        } catch {
            throw error.errno
        }
        let stackLimit = task.threadGroup?.limits[.stack].soft ?? Kernel.defaultStackLimit
        var budget = Kernel.argumentSpace(stackLimit: stackLimit)
        var argv = try strings(task, argvAddress, budget: &budget)
        let envp = try strings(task, envpAddress, budget: &budget)
        // Linux runs a program given no argv with argv[0] "" (so argc is 1).
        if argv.isEmpty { argv = [""] }
        let loaded: LoadedExecutable
        do throws(ExecError) {
            loaded = try kernel.loadExecutable(filename, at: location, argv: argv, envp: envp, context: context,
                                               credentials: task.credentials,
                                               privileges: ExecPrivileges(noNewPrivileges: task.controls.noNewPrivileges,
                                                                          securebits: task.controls.securebits),
                                               stackLimit: stackLimit, randomize: task.controls.randomizesLayout)
        } catch {
            kernel.logger.debug("task \(task.id): execve \(filename): \(error)")
            throw error.errno
        }
        do throws(SyscallError) {
            try task.becomeOnlyThread()
        } catch {
            loaded.mm.release()
            throw error
        }
        task.replaceImage(with: loaded, filename: filename, nameFromFile: filename.hasPrefix("/dev/fd/") && filename != path)
        task.controls.personality &= ~LinuxPersonality.READ_IMPLIES_EXEC
        task.takeExecCredentials(loaded)
        return 0
    }

    /// argv or envp: a NULL pointer is an empty list; a string longer than
    /// MAX_ARG_STRLEN is E2BIG (not ENAMETOOLONG), and so is going over
    /// `budget` (what the strings and their pointers may take), checked as
    /// each string is copied so a huge argv costs the Sentry no more than that.
    static func strings(_ task: Task, _ address: UInt64, budget: inout UInt64) throws(SyscallError) -> [String] {
        guard address != 0 else { return [] }
        var strings: [String] = []
        var cursor = address
        while true {
            let pointer = try task.copyIn(UInt64.self, from: cursor)
            if pointer == 0 { return strings }
            guard strings.count < maxStrings else { throw .e2big }
            let string: String
            do throws(SyscallError) {
                string = try task.copyInString(from: pointer, maxLength: ELFLoader.maxArgumentLength - 1)
            } catch .enametoolong {
                throw .e2big
            }
            let cost = UInt64(string.utf8.count) + 1 + 8
            guard cost <= budget else { throw .e2big }
            budget -= cost
            strings.append(string)
            let (next, overflow) = cursor.addingReportingOverflow(8)
            guard !overflow else { throw .efault }
            cursor = next
        }
    }
}

extension Task {
    /// begin_new_exec's part in credentials: the new ones, SECBIT_KEEP_CAPS
    /// cleared; a program running with IDs other than its real ones is not
    /// dumpable, and a raised one forgets the parent-death signal.
    func takeExecCredentials(_ loaded: LoadedExecutable) {
        let new = loaded.credentials
        credentials = new
        controls.securebits &= ~LinuxSecureBits.SECBIT_KEEP_CAPS
        let runsAsItself = new.effectiveUID == new.realUID && new.effectiveGID == new.realGID
        controls.dumpable = runsAsItself ? LinuxPtraceAccess.SUID_DUMP_USER : 0
        if loaded.secure { setParentDeathSignal(0) }
    }

    /// de_thread: the other threads of the process leave (they are told to
    /// at their next stop, woken from any wait) and this one waits until
    /// they are gone; a non-leader then takes the leader's TID, so the
    /// process keeps its PID and its thread ID equals it. EINTR if the
    /// process began to exit meanwhile (this thread exits with it).
    func becomeOnlyThread() throws(SyscallError) {
        guard let group = threadGroup, let kernel else { return }
        let others = group.lock.withLock { _ -> [Task]? in
            if group.exitReason != nil || group.execingTask != nil { return nil }
            let others = group.tasks.filter { $0 !== self }
            if !others.isEmpty { group.execingTask = self }
            return others
        }
        guard let others else { throw .eintr }
        if others.isEmpty && group.leader === self { return }
        for other in others { other.interrupt() }
        while true {
            waiter.reset()
            guard group.lock.withLock({ _ in group.tasks.count > 1 && group.exitReason == nil }) else { break }
            do {
                try waiter.block()
            } catch {
                // Only the process's exit ends this wait (Linux's de_thread
                // waits killable); a signal stays pending for after the exec.
                waiter.clearInterrupt()
            }
        }
        let exiting = group.lock.withLock { _ -> Bool in
            group.execingTask = nil
            return group.exitReason != nil
        }
        if exiting { throw .eintr }
        guard group.leader !== self else { return }
        let old = id
        kernel.pidNamespace.moveTask(self, from: old, to: group.id)
        id = group.id
        group.lock.withLock { _ in group.leader = self }
    }

    /// The point of no return of an exec (begin_new_exec): the new MM, its
    /// registers and a fresh FP state; close-on-exec FDs closed; handled
    /// signals back to default (ignored stay ignored); the old image's robust
    /// and PI futexes released (as at an exit); no alternate stack, robust
    /// list or clear_child_tid; comm from the file's name. The old MM
    /// is released by the run loop once the task left its stub.
    func replaceImage(with loaded: LoadedExecutable, filename: String, nameFromFile: Bool) {
        releaseRobustList()
        kernel?.futexes.releasePILocks(ownedBy: id)
        mm = loaded.mm
        registers = loaded.registers
        floatingPoint = FloatingPointState.initial()
        fdTable.closeOnExec()
        threadGroup?.signalHandlers.resetForExec()
        threadGroup?.execed()
        threadGroup?.deletePosixTimers()
        alternateSignalStack = SignalStack()
        clearChildTID = 0
        robustList = 0
        restartBlock = nil
        name = Kernel.commandName(nameFromFile ? loaded.executablePath : filename)
        endVfork()
    }
}

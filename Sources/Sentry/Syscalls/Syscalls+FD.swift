import Glibc

/// Descriptor-level calls: dup family, fcntl, ioctl, lseek, fsync, sync, syncfs,
/// ftruncate/truncate, fallocate, fadvise64, readahead (fs/fcntl.c,
/// fs/ioctl.c, fs/open.c, mm/fadvise.c, mm/readahead.c).
extension SyscallTable {
    mutating func registerFileDescriptor() {
        register(32, DescriptorSyscalls.dup)
        register(33, DescriptorSyscalls.dup2)
        register(292, DescriptorSyscalls.dup3)
        register(72, DescriptorSyscalls.fcntl)
        register(73, LockSyscalls.flock)
        register(16, DescriptorSyscalls.ioctl)
        register(8, DescriptorSyscalls.lseek)
        register(74, DescriptorSyscalls.fsync)
        register(75, DescriptorSyscalls.fsync)
        register(162, DescriptorSyscalls.sync)
        register(306, DescriptorSyscalls.syncfs)
        register(277, DescriptorSyscalls.syncFileRange)
        register(77, DescriptorSyscalls.ftruncate)
        register(76, DescriptorSyscalls.truncate)
        register(285, DescriptorSyscalls.fallocate)
        register(221, DescriptorSyscalls.fadvise64)
        register(187, DescriptorSyscalls.readahead)
    }
}

enum DescriptorSyscalls {
    static let dupFD: Int32 = 0, getFD: Int32 = 1, setFD: Int32 = 2, getFL: Int32 = 3, setFL: Int32 = 4
    static let setOwner: Int32 = 8
    static let getOwner: Int32 = 9, dupFDCloseOnExec: Int32 = 1030, setPipeSize: Int32 = 1031
    static let getPipeSize: Int32 = 1032
    static let closeOnExecFlag: UInt64 = 1

    static let tcgets: UInt32 = 0x5401, tcsets: UInt32 = 0x5402, tcsetsw: UInt32 = 0x5403
    static let tcsetsf: UInt32 = 0x5404, tiocgpgrp: UInt32 = 0x540f, tiocspgrp: UInt32 = 0x5410
    static let tiocgwinsz: UInt32 = 0x5413, tiocswinsz: UInt32 = 0x5414, fionread: UInt32 = 0x541b
    static let fionbio: UInt32 = 0x5421, fionclex: UInt32 = 0x5450, fioclex: UInt32 = 0x5451
    static let tiocsctty: UInt32 = 0x540e, tiocgsid: UInt32 = 0x5429

    static func dup(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.getRetained(args.int(0))
        defer { file.releaseReference() }
        return Int64(try task.fdTable.install(file, closeOnExec: false, limit: task.fileDescriptorLimit))
    }

    static func dup2(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let old = args.int(0), new = args.int(1)
        let file = try task.fdTable.getRetained(old)
        defer { file.releaseReference() }
        if old == new { return Int64(new) }
        try task.fdTable.install(file, at: new, closeOnExec: false, limit: task.fileDescriptorLimit)
        return Int64(new)
    }

    static func dup3(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let old = args.int(0), new = args.int(1), flags = args.uint(2)
        guard flags & ~LinuxFile.closeOnExec == 0 else { throw .einval }
        guard old != new else { throw .einval }
        let file = try task.fdTable.getRetained(old)
        defer { file.releaseReference() }
        try task.fdTable.install(file, at: new, closeOnExec: flags & LinuxFile.closeOnExec != 0,
                                 limit: task.fileDescriptorLimit)
        return Int64(new)
    }

    static func fcntl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let fd = args.int(0), command = args.int(1)
        let file = try task.fdTable.get(fd)
        switch command {
        case dupFD, dupFDCloseOnExec:
            let minimum = args.int(2)
            guard minimum >= 0, minimum < task.fileDescriptorLimit else { throw .einval }
            let file = try task.fdTable.getRetained(fd)
            defer { file.releaseReference() }
            return Int64(try task.fdTable.install(file, closeOnExec: command == dupFDCloseOnExec, minimum: minimum,
                                                  limit: task.fileDescriptorLimit))
        case getFD:
            return task.fdTable.entry(fd)?.closeOnExec == true ? 1 : 0
        case setFD:
            try task.fdTable.setCloseOnExec(fd, args.uint64(2) & closeOnExecFlag != 0)
            return 0
        case getFL:
            return Int64(file.flags & ~LinuxFile.closeOnExec)
        case setFL:
            guard !file.isPathOnly else { throw .ebadf }
            try file.setStatusFlags(args.uint(2))
            return 0
        case LockABI.F_GETLK, LockABI.F_SETLK, LockABI.F_SETLKW,
             LockABI.F_OFD_GETLK, LockABI.F_OFD_SETLK, LockABI.F_OFD_SETLKW:
            guard !file.isPathOnly else { throw .ebadf }
            return try LockSyscalls.recordLock(task, file, command: command, address: args.pointer(2))
        case getOwner, setOwner:
            return 0
        case MemfdABI.F_ADD_SEALS, MemfdABI.F_GET_SEALS:
            guard !file.isPathOnly else { throw .ebadf }
            return try MemfdSyscalls.seals(task, file, command: command, argument: args.uint(2))
        case getPipeSize:
            guard let pipe = (file as? PipeFile)?.pipe else { throw .ebadf }
            return Int64(pipe.bufferCapacity)
        case setPipeSize:
            guard let pipe = (file as? PipeFile)?.pipe else { throw .ebadf }
            let privileged = task.credentials.hasCapability(24)
            return Int64(try pipe.setCapacity(Int(Int64(bitPattern: args.uint64(2))), privileged: privileged))
        default:
            throw .einval
        }
    }

    static func ioctl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let fd = args.int(0), request = args.uint(1), argument = args.pointer(2)
        let file = try task.fdTable.get(fd)
        guard !file.isPathOnly else { throw .ebadf }
        switch request {
        case fioclex, fionclex:
            try task.fdTable.setCloseOnExec(fd, request == fioclex)
            return 0
        case fionbio:
            let on = try task.copyIn(Int32.self, from: argument) != 0
            let flags = file.flags
            try file.setStatusFlags(on ? flags | LinuxFile.nonBlocking : flags & ~LinuxFile.nonBlocking)
            return 0
        case fionread:
            if file is DirectoryFile { throw .enotty }
            let count = try file.readableByteCount()
            try task.copyOut(value: Int32(clamping: count), to: argument)
            return 0
        case tcgets, tiocgwinsz:
            guard let host = file.hostTerminalFD else { throw .enotty }
            let size = request == tcgets ? 36 : 8
            var buffer = [UInt8](repeating: 0, count: size)
            let result = buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { Glibc.ioctl(host, UInt(request), $0) } ?? -1
            }
            guard result == 0 else { throw SyscallError(rawValue: errno) ?? .enotty }
            try task.copyOut(buffer, to: argument)
            return 0
        case tcsets, tcsetsw, tcsetsf, tiocswinsz:
            guard let host = file.hostTerminalFD else { throw .enotty }
            // Changing the terminal from a background group is a job-control stop (tty_mode_ioctl); the size is not.
            if request != tiocswinsz { try file.terminal?.checkChange(task, signal: .terminalOutput) }
            var buffer = try task.copyIn(from: argument, count: request == tiocswinsz ? 8 : 36)
            let result = buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress.map { Glibc.ioctl(host, UInt(request), $0) } ?? -1
            }
            guard result == 0 else { throw SyscallError(rawValue: errno) ?? .enotty }
            return 0
        case tiocgpgrp, tiocspgrp, tiocsctty, tiocgsid:
            guard file.hostTerminalFD != nil else { throw .enotty }
            guard let terminal = file.terminal else {
                // A host terminal the process was not given as its terminal (runsc run from a shell): no job control.
                if request == tiocgpgrp { try task.copyOut(value: task.processID, to: argument) }
                return 0
            }
            return try TerminalControl.ioctl(task, file, terminal, request: request, argument: argument)
        default:
            throw .enotty
        }
    }

    static func lseek(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        let whence = args.int(2)
        guard (LinuxFile.seekSet...LinuxFile.seekHole).contains(whence) else { throw .einval }
        guard !file.isPathOnly else { throw .ebadf }
        return try file.seek(args.int64(1), whence: whence)
    }

    static func fsync(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        try file.sync()
        return 0
    }

    /// sync_file_range(2): EINVAL for unknown flags or a negative or
    /// overflowing range, EBADF, ESPIPE unless a regular file, directory or
    /// symlink; with SYNC_FILE_RANGE_WRITE the file is synced (the whole of it).
    static func syncFileRange(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let offset = args.int64(1), count = args.int64(2), flags = args.uint(3)
        guard flags & ~0b111 == 0, offset >= 0, count >= 0, !offset.addingReportingOverflow(count).overflow else {
            throw .einval
        }
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        guard let type = file.inode?.type, [.regular, .directory, .symlink].contains(type) else { throw .espipe }
        if flags & 0b010 != 0 { try file.sync() }
        return 0
    }

    /// sync(2) never fails.
    static func sync(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        Host.syncAll()
        return 0
    }

    /// syncfs(2): EBADF for a bad or O_PATH descriptor, else everything is synced.
    static func syncfs(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        Host.syncAll()
        return 0
    }

    static func ftruncate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let length = args.int64(1)
        guard length >= 0 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        guard file.isWritable, try file.attributes().type == .regular else { throw .einval }
        try file.truncate(to: length)
        Inotify.modified(file)
        return 0
    }

    /// FALLOC_FL_KEEP_SIZE … FALLOC_FL_UNSHARE_RANGE: the modes Linux knows.
    static let fallocateModes: Int32 = 0x7f

    /// fallocate(2), in vfs_fallocate's order: EINVAL for a bad range,
    /// EOPNOTSUPP for an unknown mode, EBADF unless open for writing, ESPIPE
    /// for a pipe, EISDIR, ENODEV for other non-regular files, EFBIG past the
    /// largest offset; the filesystem decides the rest.
    static func fallocate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        let mode = args.int(1), offset = args.int64(2), length = args.int64(3)
        guard offset >= 0, length > 0 else { throw .einval }
        guard mode & ~fallocateModes == 0 else { throw .eopnotsupp }
        guard file.isWritable else { throw .ebadf }
        if file is PipeFile { throw .espipe }
        let type = try file.attributes().type
        if type == .fifo { throw .espipe }
        if type == .directory { throw .eisdir }
        guard type == .regular else { throw .enodev }
        guard offset <= Int64.max - length else { throw .efbig }
        try file.allocate(mode: mode, offset: offset, length: length)
        Inotify.modified(file)
        return 0
    }

    /// POSIX_FADV_NORMAL … POSIX_FADV_NOREUSE.
    static let fadviseAdvices: ClosedRange<Int32> = 0...5

    /// posix_fadvise(2): only advice, which the Sentry's files (in memory, or
    /// read through the host's page cache) have no use for. ESPIPE for a
    /// pipe, then EINVAL for a negative length or an unknown advice, as
    /// generic_fadvise.
    static func fadvise64(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly else { throw .ebadf }
        if file is PipeFile { throw .espipe }
        if try file.attributes().type == .fifo { throw .espipe }
        guard args.int64(2) >= 0, fadviseAdvices.contains(args.int(3)) else { throw .einval }
        return 0
    }

    /// readahead(2): EBADF unless open for reading, EINVAL for anything but a
    /// regular file; otherwise nothing to do, as for fadvise64.
    static func readahead(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        guard !file.isPathOnly, file.isReadable else { throw .ebadf }
        guard try file.attributes().type == .regular else { throw .einval }
        return 0
    }

    /// truncate(2): EINVAL for a negative length, then the lookup's errors,
    /// EISDIR, EINVAL for other non-regular files, EROFS, EACCES.
    static func truncate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let length = args.int64(1)
        guard length >= 0 else { throw .einval }
        let path = try FileSyscalls.path(task, args.pointer(0))
        let (location, context) = try FileSyscalls.lookup(task, dirfd: LinuxFile.atCurrentDirectory, path: path,
                                                          follow: true, emptyPath: false)
        let type = try location.inode.attributes().type
        if type == .directory { throw .eisdir }
        guard type == .regular else { throw .einval }
        guard location.mount.isWritable else { throw .erofs }
        guard location.inode.mayAccess(context.credentials, want: LinuxFile.mayWrite) else { throw .eacces }
        try location.inode.setAttributes(AttributeChange(size: length))
        Inotify.notify(InotifyABI.IN_MODIFY, on: location.dentry)
        return 0
    }
}

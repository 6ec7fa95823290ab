/// read, write, their vectored and positional forms (fs/read_write.c).
extension SyscallTable {
    mutating func registerFileReadWrite() {
        register(0, ReadWriteSyscalls.read)
        register(1, ReadWriteSyscalls.write)
        register(17, ReadWriteSyscalls.pread64)
        register(18, ReadWriteSyscalls.pwrite64)
        register(19, ReadWriteSyscalls.readv)
        register(20, ReadWriteSyscalls.writev)
        register(295, ReadWriteSyscalls.preadv)
        register(296, ReadWriteSyscalls.pwritev)
        register(327) { task, args throws(SyscallError) in try ReadWriteSyscalls.vectored2(task, args, write: false) }  // preadv2
        register(328) { task, args throws(SyscallError) in try ReadWriteSyscalls.vectored2(task, args, write: true) }   // pwritev2
    }
}

enum ReadWriteSyscalls {
    static func read(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        return try readInto(task, file, [IOVec(base: args.pointer(1), length: args.uint64(2))], at: nil)
    }

    static func write(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        return try writeFrom(task, file, [IOVec(base: args.pointer(1), length: args.uint64(2))], at: nil)
    }

    static func pread64(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let position = args.int64(3)
        guard position >= 0 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        return try readInto(task, file, [IOVec(base: args.pointer(1), length: args.uint64(2))], at: position)
    }

    static func pwrite64(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let position = args.int64(3)
        guard position >= 0 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        return try writeFrom(task, file, [IOVec(base: args.pointer(1), length: args.uint64(2))], at: position)
    }

    static func readv(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        let vectors = try task.copyInIOVecs(from: args.pointer(1), count: Int(args.int(2)))
        return try readInto(task, file, vectors, at: nil)
    }

    static func writev(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let file = try task.fdTable.get(args.int(0))
        let vectors = try task.copyInIOVecs(from: args.pointer(1), count: Int(args.int(2)))
        return try writeFrom(task, file, vectors, at: nil)
    }

    static func preadv(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let position = args.int64(3)
        guard position >= 0 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        let vectors = try task.copyInIOVecs(from: args.pointer(1), count: Int(args.int(2)))
        return try readInto(task, file, vectors, at: position)
    }

    static func pwritev(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let position = args.int64(3)
        guard position >= 0 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        let vectors = try task.copyInIOVecs(from: args.pointer(1), count: Int(args.int(2)))
        return try writeFrom(task, file, vectors, at: position)
    }

    /// RWF_* flags of preadv2 and pwritev2.
    static let rwfHighPriority: UInt32 = 1, rwfDataSync: UInt32 = 2, rwfSync: UInt32 = 4, rwfNoWait: UInt32 = 8
    static let rwfAppend: UInt32 = 16

    /// preadv2 and pwritev2: preadv and pwritev with an offset of -1 for
    /// the file's position, and flags: RWF_HIPRI (no effect), RWF_DSYNC and
    /// RWF_SYNC (the write is synced), RWF_APPEND (the write goes at the
    /// end); EOPNOTSUPP for RWF_NOWAIT (no file here can promise it) and
    /// flags this kernel does not know.
    static func vectored2(_ task: Task, _ args: SyscallArguments, write: Bool) throws(SyscallError) -> Int64 {
        let position = args.int64(3), flags = args.uint(5)
        guard flags & ~(rwfHighPriority | rwfDataSync | rwfSync | rwfAppend) == 0, args.uint64(5) >> 32 == 0 else {
            throw .eopnotsupp
        }
        guard position >= -1 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        let vectors = try task.copyInIOVecs(from: args.pointer(1), count: Int(args.int(2)))
        guard write else { return try readInto(task, file, vectors, at: position == -1 ? nil : position) }
        var at: Int64? = position == -1 ? nil : position
        // RWF_APPEND writes at the end whatever the offset; with -1 the file's position follows, as after an O_APPEND write.
        let appending = flags & rwfAppend != 0 && file.isSeekable
        if appending, let size = try file.inode?.attributes().size { at = size }
        let written = try writeFrom(task, file, vectors, at: at)
        if appending, position == -1, let at { _ = try file.seek(at &+ written, whence: LinuxFile.seekSet) }
        if flags & (rwfDataSync | rwfSync) != 0 { try file.sync() }
        return written
    }

    /// One read of the vectors' total (so a pipe is read once), scattered
    /// into them. EBADF unless open for reading; ESPIPE for a positional read
    /// of an unseekable file; EISDIR for a directory.
    ///
    /// The file is asked only for what the destination can take (as Linux
    /// stops at the first fault and leaves the rest in the pipe or after the
    /// offset), and EFAULT before any byte is taken if it can take none. Linux
    /// would answer EAGAIN or end of file first on an empty pipe.
    static func readInto(_ task: Task, _ file: FileDescription, _ vectors: [IOVec],
                         at position: Int64?) throws(SyscallError) -> Int64 {
        guard file.isReadable else { throw .ebadf }
        if position != nil, !file.isSeekable { throw .espipe }
        if file is DirectoryFile { throw .eisdir }
        let requested = min(vectors.reduce(0) { $0 + Int(clamping: $1.length) }, FileSyscalls.chunk)
        let total = try task.memory().writablePrefix(of: vectors, limit: requested)
        if requested > 0, total == 0 { throw .efault }
        // A background process reading its terminal is stopped (n_tty_read's job_control).
        try file.terminal?.checkChange(task, signal: .terminalInput)
        let data = try file.read(count: total, at: position, waiter: file.isNonBlocking ? nil : task.waiter)
        if !data.isEmpty { Inotify.accessed(file) }
        var copied = 0
        for vector in vectors where copied < data.count {
            let length = min(Int(clamping: vector.length), data.count - copied)
            try task.copyOut(data[copied..<(copied + length)], to: vector.base)
            copied += length
        }
        return Int64(data.count)
    }

    /// Gathers the vectors and writes them at once (PIPE_BUF atomicity holds
    /// for writev too). EPIPE also sends SIGPIPE.
    static func writeFrom(_ task: Task, _ file: FileDescription, _ vectors: [IOVec],
                          at position: Int64?) throws(SyscallError) -> Int64 {
        guard file.isWritable else { throw .ebadf }
        if position != nil, !file.isSeekable { throw .espipe }
        var data: [UInt8] = []
        for vector in vectors where data.count < FileSyscalls.chunk {
            let length = min(Int(clamping: vector.length), FileSyscalls.chunk - data.count)
            guard length > 0 else { continue }
            let piece = try task.copyIn(from: vector.base, count: length)
            // The first (for write(2) the only) piece is taken as is, not copied a second time.
            if data.isEmpty { data = piece } else { data += piece }
        }
        // With TOSTOP, a background process writing to its terminal is stopped (n_tty_write).
        if let terminal = file.terminal, terminal.isBackground(task), file.stopsBackgroundWrites {
            try terminal.checkChange(task, signal: .terminalOutput)
        }
        do {
            let waiter = file.isNonBlocking ? nil : task.waiter
            let written = try file.write(data, at: position, waiter: waiter, by: task)
            if written > 0 { Inotify.modified(file) }
            return Int64(written)
        } catch .epipe {
            task.sendPipeSignal()
            throw .epipe
        }
    }
}

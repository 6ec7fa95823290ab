/// In-kernel copies between files: sendfile and copy_file_range
/// (fs/read_write.c), splice, tee and vmsplice (fs/splice.c). All move data
/// through a Sentry buffer; no host splice.
extension SyscallTable {
    mutating func registerFileSplice() {
        register(40, SpliceSyscalls.sendfile)
        register(326, SpliceSyscalls.copyFileRange)
        register(275, SpliceSyscalls.splice)
        register(276, SpliceSyscalls.tee)
        register(278, SpliceSyscalls.vmsplice)
    }
}

enum SpliceSyscalls {
    /// sendfile(2): from `in_fd` at `*offset` (its file offset untouched) or
    /// at its offset, to `out_fd` at its offset. Errors in do_sendfile's order
    /// (EINVAL for a source splice cannot read, so callers fall back to
    /// read/write); a failure after some bytes moved returns the count moved.
    static func sendfile(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let offsetAddress = args.pointer(2)
        var position: Int64? = nil
        if offsetAddress != 0 { position = try task.copyIn(Int64.self, from: offsetAddress) }
        let source = try task.fdTable.get(args.int(1))
        guard source.isReadable else { throw .ebadf }
        if position != nil, !source.isSeekable { throw .espipe }
        let requested = args.uint64(3)
        guard Int64(bitPattern: requested) >= 0, (position ?? 0) >= 0 else { throw .einval }
        let destination = try task.fdTable.get(args.int(0))
        guard destination.isWritable else { throw .ebadf }
        if destination.isAppending { throw .einval }
        // splice_direct_to_actor reads regular files and devices (/dev/zero, /dev/urandom); a pipe takes other data too.
        let sourceType = FileType(mode: try source.attributes().mode)
        if source is PipeFile || sourceType == .directory { throw .einval }
        if sourceType != .regular, sourceType != .characterDevice, !(destination is PipeFile) { throw .einval }
        let count = Int(min(requested, UInt64(Int32.max) & ~0xfff))
        // rw_verify_area: a read whose end is past INT64_MAX is EINVAL (a device ignores the offset).
        if let start = position, start.addingReportingOverflow(Int64(count)).overflow { throw .einval }
        // Without *offset the source's own read(2) moves its offset (the host's, for a host stdio file).
        let moved = try copy(task, from: source, at: position, to: destination, at: nil, count: count)
        if let start = position { try task.copyOut(value: start + Int64(moved), to: offsetAddress) }
        return Int64(moved)
    }

    /// copy_file_range(2) between regular files; the same file only when the
    /// ranges do not overlap. Errors in vfs_copy_file_range's order. Without
    /// an offset pointer a file's own read(2)/write(2) offset is used and
    /// moved: a host stdio file's is the host's (cat's output after a shell's).
    static func copyFileRange(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let source = try task.fdTable.get(args.int(0))
        let destination = try task.fdTable.get(args.int(2))
        let inAddress = args.pointer(1), outAddress = args.pointer(3)
        let inGiven = inAddress != 0 ? Optional(try task.copyIn(Int64.self, from: inAddress)) : nil
        let outGiven = outAddress != 0 ? Optional(try task.copyIn(Int64.self, from: outAddress)) : nil
        guard args.uint(5) == 0 else { throw .einval }
        let inAttributes = try source.attributes(), outAttributes = try destination.attributes()
        let inType = FileType(mode: inAttributes.mode), outType = FileType(mode: outAttributes.mode)
        if inType == .directory || outType == .directory { throw .eisdir }
        guard inType == .regular, outType == .regular else { throw .einval }
        guard source.isReadable, destination.isWritable, !destination.isAppending else { throw .ebadf }
        let inPosition = try position(inGiven, of: source), outPosition = try position(outGiven, of: destination)
        guard inPosition >= 0, outPosition >= 0 else { throw .einval }
        let requested = min(args.uint64(4), UInt64(Int32.max) & ~0xfff)
        let count = Int(min(requested, UInt64(Int64.max - max(inPosition, outPosition))))
        if inAttributes.device == outAttributes.device, inAttributes.inodeNumber == outAttributes.inodeNumber,
           outPosition + Int64(count) > inPosition, outPosition < inPosition + Int64(count) {
            throw .einval
        }
        guard count > 0 else { return 0 }
        let moved = try copy(task, from: source, at: inGiven, to: destination, at: outGiven, count: count)
        if let inGiven { try task.copyOut(value: inGiven + Int64(moved), to: inAddress) }
        if let outGiven { try task.copyOut(value: outGiven + Int64(moved), to: outAddress) }
        return Int64(moved)
    }

    /// `given`, or the offset read(2) and write(2) use: the host's for a host stdio file.
    private static func position(_ given: Int64?, of file: FileDescription) throws(SyscallError) -> Int64 {
        if let given { return given }
        return try file.seek(0, whence: LinuxFile.seekCurrent)
    }

    /// Moves up to `count` bytes a chunk at a time until the source ends or
    /// the destination takes less. Only the first read may block (a pipe
    /// source with nothing more to give ends the copy); an error after some
    /// bytes moved ends it with the count so far, as Linux does.
    private static func copy(_ task: Task, from source: FileDescription, at start: Int64?,
                             to destination: FileDescription, at outStart: Int64?,
                             count: Int) throws(SyscallError) -> Int {
        var moved = 0
        while moved < count {
            let want = min(count - moved, FileSyscalls.chunk)
            let data: [UInt8]
            do throws(SyscallError) {
                let waiter = moved == 0 && !source.isNonBlocking ? task.waiter : nil
                data = try source.read(count: want, at: start.map { $0 + Int64(moved) }, waiter: waiter)
            } catch {
                if moved > 0 { break }
                throw error
            }
            if data.isEmpty { break }
            let written: Int
            do throws(SyscallError) {
                written = try write(task, data, to: destination, at: outStart.map { $0 + Int64(moved) })
            } catch {
                // Nothing moved yet: the call restarts (a pause) or fails,
                // reading this chunk again. Else it ends with what went,
                // counting bytes a pause kept (they are in the destination).
                let went = moved > 0 ? task.takeKeptWritten() : 0
                if start == nil { unread(data.count - went, of: source) }
                if moved == 0 { throw error }
                moved += went
                break
            }
            moved += written
            if written < data.count {
                if start == nil { unread(data.count - written, of: source) }
                break
            }
            if data.count < want { break }
        }
        return moved
    }

    /// Moves a source read at its own offset back over `count` bytes the
    /// destination did not take, so they are read again (sendfile advances
    /// the offset by what was sent). A source that cannot seek keeps them read.
    private static func unread(_ count: Int, of source: FileDescription) {
        guard count > 0 else { return }
        _ = try? source.seek(-Int64(count), whence: LinuxFile.seekCurrent)
    }

    /// Writes all of `data` unless the destination stops taking it.
    private static func write(_ task: Task, _ data: [UInt8], to destination: FileDescription,
                              at position: Int64?) throws(SyscallError) -> Int {
        var written = 0
        while written < data.count {
            let chunk = Array(data[written...])
            let count: Int
            do throws(SyscallError) {
                count = try destination.write(chunk, at: position.map { $0 + Int64(written) },
                                              waiter: destination.isNonBlocking ? nil : task.waiter, by: task)
            } catch .epipe {
                task.sendPipeSignal()
                if written > 0 { return written }
                throw .epipe
            } catch {
                if written > 0 { return written + task.takeKeptWritten() }
                throw error
            }
            if count == 0 { break }
            written += count
        }
        if written > 0 { Inotify.modified(destination) }
        return written
    }

    // MARK: splice, tee, vmsplice

    static let SPLICE_F_NONBLOCK: UInt32 = 0x2
    /// SPLICE_F_ALL: MOVE, NONBLOCK, MORE, GIFT.
    static let spliceFlags: UInt32 = 0xf

    /// splice(2), in the syscall's order: 0 for a zero length, EINVAL for
    /// unknown flags, EBADF, ESPIPE for an offset on a pipe, EFAULT for an
    /// offset, EBADF unless readable and writable; then pipe to pipe (EINVAL
    /// for one pipe), pipe to file or file to pipe (EINVAL for an offset the
    /// file cannot take or O_APPEND); EINVAL without a pipe. Moves what is
    /// there: a pipe's buffered bytes, or what fits in the pipe.
    static func splice(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let length = Int(clamping: args.uint64(4)), flags = args.uint(5)
        guard length > 0 else { return 0 }
        guard flags & ~spliceFlags == 0 else { throw .einval }
        let source = try task.fdTable.get(args.int(0))
        let destination = try task.fdTable.get(args.int(2))
        let inAddress = args.pointer(1), outAddress = args.pointer(3)
        let inPipe = (source as? PipeFile)?.pipe, outPipe = (destination as? PipeFile)?.pipe
        if inPipe != nil, inAddress != 0 { throw .espipe }
        if outPipe != nil, outAddress != 0 { throw .espipe }
        let outOffset: Int64? = outAddress == 0 ? nil : try task.copyIn(Int64.self, from: outAddress)
        let inOffset: Int64? = inAddress == 0 ? nil : try task.copyIn(Int64.self, from: inAddress)
        guard source.isReadable, destination.isWritable else { throw .ebadf }
        var nonBlocking = flags & SPLICE_F_NONBLOCK != 0
        switch (inPipe, outPipe) {
        case let (inPipe?, outPipe?):
            guard inPipe !== outPipe else { throw .einval }
            nonBlocking = nonBlocking || source.isNonBlocking || destination.isNonBlocking
            return Int64(try pipeToPipe(task, inPipe, outPipe, count: length, consume: true, nonBlocking: nonBlocking))
        case let (inPipe?, nil):
            if outOffset != nil, !destination.isSeekable { throw .einval }
            if destination.isAppending { throw .einval }
            let position = outOffset ?? currentOffset(of: destination)
            if let position, position < 0 || position.addingReportingOverflow(Int64(length)).overflow { throw .einval }
            guard try inPipe.waitForData(nonBlocking: nonBlocking || source.isNonBlocking,
                                         waiter: task.waiter) else { return 0 }
            let data = try inPipe.read(count: min(length, FileSyscalls.chunk), nonBlocking: true, waiter: nil)
            let written: Int
            do throws(SyscallError) {
                written = try write(task, data, to: destination, at: position)
            } catch {
                inPipe.putBack(data[...])
                throw error
            }
            inPipe.putBack(data[written...])
            try advance(task, destination, from: position, by: written, address: outAddress)
            return Int64(written)
        case let (nil, outPipe?):
            if inOffset != nil, !source.isSeekable { throw .einval }
            if source is DirectoryFile { throw .einval }
            let position = inOffset ?? currentOffset(of: source)
            if let position, position < 0 { throw .einval }
            try waitForRoom(task, in: outPipe, nonBlocking: nonBlocking || destination.isNonBlocking)
            let data = try source.read(count: min(length, outPipe.room), at: position,
                                       waiter: source.isNonBlocking ? nil : task.waiter)
            // Bytes read from a file stay there; from anything else they go
            // in even if another writer filled the pipe meanwhile.
            let moved = position != nil ? try outPipe.write(data, nonBlocking: true, waiter: nil)
                                        : try outPipe.fill(data)
            try advance(task, source, from: position, by: moved, address: inAddress)
            return Int64(moved)
        case (nil, nil):
            throw .einval
        }
    }

    /// A seekable file's offset, where splice starts without an offset given.
    private static func currentOffset(of file: FileDescription) -> Int64? {
        file.isSeekable ? file.lock.withLock { _ in file.offset } : nil
    }

    /// After splice moved `count` bytes from `position`: the caller's offset
    /// (at `address`) or else the file's moves past them.
    private static func advance(_ task: Task, _ file: FileDescription, from position: Int64?, by count: Int,
                                address: UInt64) throws(SyscallError) {
        guard let position else { return }
        if address != 0 {
            try task.copyOut(value: position + Int64(count), to: address)
        } else {
            file.lock.withLock { _ in file.offset = position + Int64(count) }
        }
    }

    /// tee(2): copies up to `len` bytes buffered in one pipe into another
    /// without taking them; EINVAL unless both are pipes, different ones.
    static func tee(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let length = Int(clamping: args.uint64(2)), flags = args.uint(3)
        guard length > 0 else { return 0 }
        guard flags & ~spliceFlags == 0 else { throw .einval }
        let source = try task.fdTable.get(args.int(0))
        let destination = try task.fdTable.get(args.int(1))
        guard source.isReadable, destination.isWritable else { throw .ebadf }
        guard let inPipe = (source as? PipeFile)?.pipe, let outPipe = (destination as? PipeFile)?.pipe,
              inPipe !== outPipe else { throw .einval }
        let nonBlocking = flags & SPLICE_F_NONBLOCK != 0 || source.isNonBlocking || destination.isNonBlocking
        return Int64(try pipeToPipe(task, inPipe, outPipe, count: length, consume: false, nonBlocking: nonBlocking))
    }

    /// Waits for bytes in `source` (0 at end of file), then for room in
    /// `destination` (EPIPE and SIGPIPE without a reader), then moves or copies.
    private static func pipeToPipe(_ task: Task, _ source: Pipe, _ destination: Pipe, count: Int, consume: Bool,
                                   nonBlocking: Bool) throws(SyscallError) -> Int {
        guard try source.waitForData(nonBlocking: nonBlocking, waiter: task.waiter) else { return 0 }
        try waitForRoom(task, in: destination, nonBlocking: nonBlocking)
        return Pipe.transfer(from: source, to: destination, count: count, consume: consume)
    }

    /// wait_for_space for the task: EPIPE also sends SIGPIPE.
    private static func waitForRoom(_ task: Task, in pipe: Pipe, nonBlocking: Bool) throws(SyscallError) {
        do throws(SyscallError) {
            try pipe.waitForRoom(nonBlocking: nonBlocking, waiter: task.waiter)
        } catch .epipe {
            task.sendPipeSignal()
            throw .epipe
        }
    }

    /// vmsplice(2): EINVAL for unknown flags, EBADF, the iovecs' EINVAL and
    /// EFAULT, 0 for nothing to move, EBADF for a file that is no pipe. Into
    /// a pipe's write end, what fits once there is room; out of a read end,
    /// what is buffered once there is some.
    static func vmsplice(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(3)
        guard flags & ~spliceFlags == 0 else { throw .einval }
        let file = try task.fdTable.get(args.int(0))
        let writing = file.isWritable
        guard writing || file.isReadable else { throw .ebadf }
        let count = Int(clamping: args.uint64(2))
        let vectors = try task.copyInIOVecs(from: args.pointer(1), count: count)
        let total = vectors.reduce(0) { $0 + Int(clamping: $1.length) }
        guard total > 0 else { return 0 }
        guard let pipe = (file as? PipeFile)?.pipe else { throw .ebadf }
        let nonBlocking = flags & SPLICE_F_NONBLOCK != 0 || file.isNonBlocking
        if writing {
            try waitForRoom(task, in: pipe, nonBlocking: nonBlocking)
            var data: [UInt8] = []
            let room = pipe.room
            for vector in vectors where data.count < room {
                let length = min(Int(clamping: vector.length), room - data.count)
                guard length > 0 else { continue }
                data += try task.copyIn(from: vector.base, count: length)
            }
            return Int64(try pipe.write(data, nonBlocking: true, waiter: nil))
        }
        guard try pipe.waitForData(nonBlocking: nonBlocking, waiter: task.waiter) else { return 0 }
        let data = try pipe.read(count: min(total, FileSyscalls.chunk), nonBlocking: true, waiter: nil)
        var copied = 0
        for vector in vectors where copied < data.count {
            let length = min(Int(clamping: vector.length), data.count - copied)
            try task.copyOut(data[copied..<(copied + length)], to: vector.base)
            copied += length
        }
        return Int64(copied)
    }
}

/// In-kernel copies between files: sendfile and copy_file_range (fs/read_write.c).
/// Both move data through a Sentry buffer a chunk at a time; no host splice.
extension SyscallTable {
    mutating func registerFileSplice() {
        register(40, SpliceSyscalls.sendfile)
        register(326, SpliceSyscalls.copyFileRange)
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
        // splice_direct_to_actor reads only regular files; a pipe takes device data too.
        let sourceType = FileType(mode: try source.attributes().mode)
        if source is PipeFile || sourceType == .directory { throw .einval }
        if sourceType != .regular, !(destination is PipeFile) { throw .einval }
        let count = Int(min(requested, UInt64(Int32.max) & ~0xfff))
        // rw_verify_area: a read whose end is past INT64_MAX is EINVAL (a device ignores the offset).
        if let start = position, start.addingReportingOverflow(Int64(count)).overflow { throw .einval }
        let moved: Int
        if let start = position {
            moved = try copy(task, from: source, at: start, to: destination, at: nil, count: count)
            try task.copyOut(value: start + Int64(moved), to: offsetAddress)
        } else if source.isSeekable {
            let start = source.lock.withLock { _ in source.offset }
            moved = try copy(task, from: source, at: start, to: destination, at: nil, count: count)
            source.lock.withLock { _ in source.offset = start + Int64(moved) }
        } else {
            moved = try copy(task, from: source, at: nil, to: destination, at: nil, count: count)
        }
        return Int64(moved)
    }

    /// copy_file_range(2) between regular files; the same file only when the
    /// ranges do not overlap. Errors in vfs_copy_file_range's order.
    static func copyFileRange(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let source = try task.fdTable.get(args.int(0))
        let destination = try task.fdTable.get(args.int(2))
        let inAddress = args.pointer(1), outAddress = args.pointer(3)
        var inPosition = source.lock.withLock { _ in source.offset }
        var outPosition = destination.lock.withLock { _ in destination.offset }
        if inAddress != 0 { inPosition = try task.copyIn(Int64.self, from: inAddress) }
        if outAddress != 0 { outPosition = try task.copyIn(Int64.self, from: outAddress) }
        guard args.uint(5) == 0 else { throw .einval }
        let inAttributes = try source.attributes(), outAttributes = try destination.attributes()
        let inType = FileType(mode: inAttributes.mode), outType = FileType(mode: outAttributes.mode)
        if inType == .directory || outType == .directory { throw .eisdir }
        guard inType == .regular, outType == .regular else { throw .einval }
        guard source.isReadable, destination.isWritable, !destination.isAppending else { throw .ebadf }
        guard inPosition >= 0, outPosition >= 0 else { throw .einval }
        let requested = min(args.uint64(4), UInt64(Int32.max) & ~0xfff)
        let count = Int(min(requested, UInt64(Int64.max - max(inPosition, outPosition))))
        if inAttributes.device == outAttributes.device, inAttributes.inodeNumber == outAttributes.inodeNumber,
           outPosition + Int64(count) > inPosition, outPosition < inPosition + Int64(count) {
            throw .einval
        }
        guard count > 0 else { return 0 }
        let moved = try copy(task, from: source, at: inPosition, to: destination, at: outPosition, count: count)
        if inAddress != 0 {
            try task.copyOut(value: inPosition + Int64(moved), to: inAddress)
        } else {
            source.lock.withLock { _ in source.offset = inPosition + Int64(moved) }
        }
        if outAddress != 0 {
            try task.copyOut(value: outPosition + Int64(moved), to: outAddress)
        } else {
            destination.lock.withLock { _ in destination.offset = outPosition + Int64(moved) }
        }
        return Int64(moved)
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
            do throws(SyscallError) {
                let waiter = moved == 0 && !source.isNonBlocking ? task.waiter : nil
                let want = min(count - moved, FileSyscalls.chunk)
                let data = try source.read(count: want, at: start.map { $0 + Int64(moved) }, waiter: waiter)
                if data.isEmpty { break }
                let written = try write(task, data, to: destination, at: outStart.map { $0 + Int64(moved) })
                moved += written
                if written < data.count || data.count < want { break }
            } catch {
                if moved > 0 { break }
                throw error
            }
        }
        return moved
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
                                              waiter: destination.isNonBlocking ? nil : task.waiter)
            } catch .epipe {
                task.sendPipeSignal()
                if written > 0 { return written }
                throw .epipe
            } catch {
                if written > 0 { return written }
                throw error
            }
            if count == 0 { break }
            written += count
        }
        if written > 0 { Inotify.modified(destination) }
        return written
    }
}

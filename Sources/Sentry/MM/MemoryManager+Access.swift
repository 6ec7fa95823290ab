import Glibc

/// The Sentry's reads and writes of application memory: memcpy through the
/// Sentry's own mapping of the MemoryFile, checked against the VMAs' protections
/// as Linux's copy_from_user/copy_to_user are.
extension MemoryManager {
    /// Calls `body` with the Sentry's view of each piece of `address..<address+count`,
    /// in order, populating pages as needed. EFAULT if any byte is unmapped or
    /// lacks `access` (`.read` needs any protection, `.write` needs PROT_WRITE);
    /// `force` ignores protections (the ELF loader writing read-only segments).
    /// For `.write`, private pages shared with another MM are copied first.
    public func withMemory(at address: UInt64, count: Int, access: Protection, force: Bool = false,
                           _ body: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError) {
        guard count > 0 else { return }
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= MemoryManager.maxAddress else { throw .efault }
        // Pieces are gathered under the lock and used after it: `body` may block
        // (a read from a pipe), and the Sentry's mapping of the MemoryFile
        // stays valid whatever the application does meanwhile.
        let pieces = try lock.withLock { _ throws(SyscallError) -> [UnsafeMutableRawBufferPointer] in
            guard let memoryFile else { throw SyscallError.efault }
            if let piece = try onePieceLocked(address..<end, access: access, force: force, memoryFile) {
                return [piece]
            }
            var pieces: [UnsafeMutableRawBufferPointer] = []
            var cursor = address
            while cursor < end {
                guard let index = vmaIndexLocked(containing: cursor) else { throw SyscallError.efault }
                let vma = vmas[index]
                try Self.checkAccess(to: vma, access, force: force)
                let pieceEnd = min(end, vma.end)
                for (range, offset) in try backingRunsLocked(cursor..<pieceEnd, in: vma,
                                                              forWriting: access.contains(.write)) {
                    guard let pointer = memoryFile.pointer(at: offset, count: UInt64(range.count)) else { throw SyscallError.efault }
                    pieces.append(UnsafeMutableRawBufferPointer(start: pointer, count: range.count))
                }
                cursor = pieceEnd
            }
            return pieces
        }
        for piece in pieces { try body(piece) }
    }

    /// EFAULT unless `vma` allows `access`: the kernel's pages are every
    /// process's (not even a forced write), and `force` ignores the rest.
    private static func checkAccess(to vma: VMA, _ access: Protection, force: Bool) throws(SyscallError) {
        if vma.special != nil && access.contains(.write) { throw .efault }
        guard !force else { return }
        if access.contains(.write) && !vma.protection.contains(.write) { throw .efault }
        if vma.protection.isEmpty { throw .efault }
    }

    /// The Sentry's view of `range` when one populated private run of one
    /// VMA holds it all and, for a write, no other MM shares its pages (a
    /// signal frame, a syscall's struct): what the general walk would find,
    /// without its arrays. Nil when the walk is needed; the same errors.
    private func onePieceLocked(_ range: Range<UInt64>, access: Protection, force: Bool,
                                _ memoryFile: MemoryFile) throws(SyscallError) -> UnsafeMutableRawBufferPointer? {
        guard let index = vmaIndexLocked(containing: range.lowerBound) else { throw .efault }
        let vma = vmas[index]
        try Self.checkAccess(to: vma, access, force: force)
        guard range.upperBound <= vma.end, vma.special == nil, vma.sharedMemory == nil else { return nil }
        let writing = access.contains(.write)
        let run = firstPrivateIndexLocked(endingAfter: range.lowerBound)
        guard run < privatePages.count, privatePages[run].start <= range.lowerBound,
              privatePages[run].end >= range.upperBound else { return nil }
        let offset = privatePages[run].offset + (range.lowerBound - privatePages[run].start)
        let count = UInt64(range.count)
        if writing, memoryFile.anyShared(in: Page.roundDown(offset)..<(Page.roundUp(offset + count) ?? offset + count)) {
            return nil
        }
        guard let pointer = memoryFile.pointer(at: offset, count: count) else { throw .efault }
        return UnsafeMutableRawBufferPointer(start: pointer, count: range.count)
    }

    /// How many of the first `limit` bytes of `vectors` the application could
    /// write (mapped with PROT_WRITE), counted from the start: a read asks
    /// its file for no more, so a fault cannot lose bytes already taken.
    public func writablePrefix(of vectors: [IOVec], limit: Int) -> Int {
        lock.withLock { _ in
            var count = 0
            for vector in vectors where count < limit {
                let wanted = UInt64(min(limit - count, Int(clamping: vector.length)))
                var cursor = vector.base
                let (end, overflow) = vector.base.addingReportingOverflow(wanted)
                let stop = overflow ? UInt64.max : min(end, MemoryManager.maxAddress)
                while cursor < stop, let index = vmaIndexLocked(containing: cursor),
                      vmas[index].protection.contains(.write) {
                    cursor = min(stop, vmas[index].end)
                }
                count += Int(cursor - vector.base)
                if cursor < end || overflow { return count }
            }
            return count
        }
    }

    /// Copies `count` bytes from application memory.
    public func copyIn(from address: UInt64, count: Int) throws(SyscallError) -> [UInt8] {
        guard count >= 0 else { throw .einval }
        var failure: SyscallError?
        // Not zeroed first: the copy fills it all, or the array is dropped.
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(SyscallError) {
                try copyIn(from: address, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = count
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Copies application memory into `destination`.
    public func copyIn(from address: UInt64, into destination: UnsafeMutableRawBufferPointer) throws(SyscallError) {
        guard let base = destination.baseAddress else { return }
        var done = 0
        try withMemory(at: address, count: destination.count, access: .read) { piece throws(SyscallError) in
            if let source = piece.baseAddress { memcpy(base + done, source, piece.count) }
            done += piece.count
        }
    }

    /// Copies `source` into application memory.
    public func copyOut(_ source: UnsafeRawBufferPointer, to address: UInt64, force: Bool = false) throws(SyscallError) {
        guard let base = source.baseAddress else { return }
        var done = 0
        // Only a large copy (exec's segments) goes through the MemoryFile's pwrite: a small one takes no lock.
        let memoryFile = source.count >= MemoryFile.writeThroughMinimum ? lock.withLock { _ in self.memoryFile } : nil
        try withMemory(at: address, count: source.count, access: .write, force: force) { piece throws(SyscallError) in
            if let memoryFile {
                memoryFile.copy(base + done, to: piece)
            } else if let destination = piece.baseAddress {
                memcpy(destination, base + done, piece.count)
            }
            done += piece.count
        }
    }

    /// Copies `bytes` into application memory.
    public func copyOut(_ bytes: [UInt8], to address: UInt64, force: Bool = false) throws(SyscallError) {
        var failure: SyscallError?
        bytes.withUnsafeBytes { raw in
            do throws(SyscallError) { try copyOut(raw, to: address, force: force) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Zeroes application memory (bss tails).
    public func zero(at address: UInt64, count: Int, force: Bool = false) throws(SyscallError) {
        try withMemory(at: address, count: count, access: .write, force: force) { piece throws(SyscallError) in
            if let destination = piece.baseAddress { memset(destination, 0, piece.count) }
        }
    }

    /// Reads a NUL-terminated string of at most `maxLength` bytes (the NUL not
    /// counted): ENAMETOOLONG if no NUL comes first, EFAULT if memory ends first.
    public func copyInString(from address: UInt64, maxLength: Int) throws(SyscallError) -> String {
        var bytes: [UInt8] = []
        var cursor = address
        while bytes.count <= maxLength {
            // Read up to the end of the page, so a string at the end of a mapping is not an EFAULT.
            let pageRemaining = Int(Page.size - (cursor & Page.mask))
            let chunk = min(pageRemaining, maxLength + 1 - bytes.count)
            let piece = try copyIn(from: cursor, count: chunk)
            if let nul = piece.firstIndex(of: 0) {
                bytes.append(contentsOf: piece[..<nul])
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.append(contentsOf: piece)
            cursor += UInt64(chunk)
        }
        throw .enametoolong
    }
}

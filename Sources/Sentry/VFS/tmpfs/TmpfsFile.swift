/// An open tmpfs regular file; also what mmap maps.
public final class TmpfsFile: FileDescription, MappableFile, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "tmpfs.File" }

    private var file: TmpfsRegularFile? { location?.dentry.inode as? TmpfsRegularFile }

    override public func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] {
        guard let file else { throw .ebadf }
        guard position >= 0 else { throw .einval }
        return try file.read(count: count, at: position)
    }

    override public func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        guard let file else { throw .ebadf }
        return try file.write(bytes, at: position, append: append)
    }

    /// fallocate(2): mode 0 and FALLOC_FL_KEEP_SIZE take the range's pages
    /// now (shmem_fallocate), so st_blocks and `du` count them; the modes
    /// that punch or shift ranges are EOPNOTSUPP, as FileDescription's.
    override public func allocate(mode: Int32, offset: Int64, length: Int64) throws(SyscallError) {
        guard let file else { throw .ebadf }
        guard mode == 0 || mode == LinuxFile.fallocateKeepSize else { throw .eopnotsupp }
        try file.allocate(offset: offset, length: length, keepSize: mode == LinuxFile.fallocateKeepSize)
    }

    override public var isMappable: Bool { true }

    /// Maps the file shared (memfd_check_seals_mmap): under F_SEAL_WRITE or
    /// F_SEAL_FUTURE_WRITE never writable (EPERM for PROT_WRITE, and no
    /// mprotect to it later). The seal check and the insertion hold the
    /// inode's mapping lock, which F_ADD_SEALS holds too.
    func mapShared(_ request: MemoryManager.MappingRequest, writable: Bool, into mm: MemoryManager)
        throws(SyscallError) -> UInt64 {
        guard let file else { throw .ebadf }
        return try file.mappingLock.withLock { _ throws(SyscallError) -> UInt64 in
            var request = request
            if file.currentSeals & (MemfdABI.F_SEAL_WRITE | MemfdABI.F_SEAL_FUTURE_WRITE) != 0 {
                if writable { throw .eperm }
                request.maxProtection = [.read, .execute]
            }
            return try mm.map(request)
        }
    }

    public func readForMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError)
        -> Int {
        guard let file else { throw .ebadf }
        let bytes = try file.read(count: buffer.count, at: Int64(clamping: offset))
        buffer.copyBytes(from: bytes)
        return bytes.count
    }

    public func writeFromMapping(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(SyscallError) {
        guard let file else { throw .ebadf }
        let size = UInt64(max(0, file.currentSize))
        guard offset < size else { return }
        let count = Int(min(UInt64(buffer.count), size - offset))
        _ = try file.write(Array(buffer.prefix(count)), at: Int64(offset), append: false)
    }

    public func sizeForMapping() throws(SyscallError) -> UInt64 {
        guard let file else { throw .ebadf }
        return UInt64(file.currentSize)
    }

    public func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        file?.sharedPages(memoryFile: memoryFile) ?? SharedMemory(memoryFile: memoryFile)
    }

    public var mappingName: String {
        location.flatMap { VirtualFilesystem.absolutePath(of: $0) } ?? ""
    }
}

import CShim
import Glibc
import State
import Synchronization

/// An open regular file of the rootfs: a host FD with the application's access
/// mode, read and written at our offset (pread/pwrite; O_APPEND writes go
/// through the host's append). Saved as how to open it again: its path below
/// the rootfs, and the size and modification time it had at the checkpoint,
/// so a restore refuses a file that is gone or changed.
public final class HostFile: FileDescription, MappableFile, @unchecked Sendable { // offset guarded by FileDescription.lock, the FD by `hostFD`
    override public class var savedTypeName: String { "hostfs.File" }

    /// Its own lock: read paths take it while FileDescription.lock is held,
    /// MM fills while the MM's is (file data in VFSLock's order).
    private let hostFD = Mutex<Int32>(-1)
    /// Filled at save time, checked at reopen.
    private var savedPath: [String] = []
    private var savedSize: Int64 = 0
    private var savedModification = FileTime(seconds: 0, nanoseconds: 0)
    private var savedInode: UInt64 = 0

    public required init() { super.init() }

    init(hostFD: Int32, location: VirtualPath, flags: UInt32) {
        self.hostFD.withLock { $0 = hostFD }
        super.init(location: location, flags: flags)
    }

    deinit {
        let fd = hostFD.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    /// The host open flags for the application's: access mode and append only.
    static func hostFlags(for flags: UInt32) -> Int32 {
        var result: Int32
        switch flags & LinuxFile.accessModeMask {
        case LinuxFile.writeOnly: result = O_WRONLY
        case LinuxFile.readWrite: result = O_RDWR
        default: result = O_RDONLY
        }
        if flags & LinuxFile.append != 0 { result |= O_APPEND }
        return result | O_NOFOLLOW
    }

    private var descriptor: Int32 { hostFD.withLock { $0 } }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let fd = descriptor
        guard let location, !location.dentry.isDeleted else {
            throw StateError.invalidValue("hostfs: an open file was deleted; it cannot be reopened after a restore")
        }
        let host = try Host.stat(fd)
        try sink.save("path", location.dentry.pathComponents)
        try sink.save("size", Int64(host.st_size))
        try sink.save("modificationTime", FileTime(seconds: Int64(host.st_mtim.tv_sec),
                                                   nanoseconds: Int64(host.st_mtim.tv_nsec)))
        try sink.save("hostInode", UInt64(host.st_ino))
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        savedPath = try source.load("path")
        savedSize = try source.load("size")
        savedModification = try source.load("modificationTime")
        savedInode = try source.load("hostInode")
    }

    override public func afterLoad() throws {
        guard let filesystem = location?.dentry.filesystem as? HostFilesystem else {
            throw StateError.invalidValue("hostfs file without a host filesystem")
        }
        filesystem.registerRestored(self)
    }

    /// Opens the file again after a restore. Size and modification time must
    /// match the checkpoint's (the inode number may differ: a migrated rootfs
    /// is a copy).
    func reopen() throws {
        let display = "/" + savedPath.joined(separator: "/")
        guard let filesystem = location?.dentry.filesystem as? HostFilesystem else {
            throw HostReopenError(path: display, reason: "not on a host filesystem")
        }
        let fd: Int32
        do {
            fd = try filesystem.openBeneath(savedPath, flags: Self.hostFlags(for: flags))
        } catch {
            let reason = error == .enoent ? "the file is gone" : String(cString: strerror(error.rawValue))
            throw HostReopenError(path: display, reason: reason)
        }
        guard let host = try? Host.stat(fd) else {
            close(fd)
            throw HostReopenError(path: display, reason: "cannot stat the reopened file")
        }
        let modification = FileTime(seconds: Int64(host.st_mtim.tv_sec), nanoseconds: Int64(host.st_mtim.tv_nsec))
        guard Int64(host.st_size) == savedSize, modification == savedModification else {
            close(fd)
            throw HostReopenError(path: display, reason: "the file changed since the checkpoint (size \(savedSize) "
                + "→ \(host.st_size), modified \(savedModification.seconds) → \(modification.seconds))")
        }
        let old = hostFD.withLock { current -> Int32 in
            defer { current = fd }
            return current
        }
        if old >= 0 { close(old) }
    }

    override public func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] {
        guard position >= 0 else { throw .einval }
        return try Host.read(descriptor, count: count, at: position)
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        if position == nil, isAppending {
            return try lock.withLock { _ throws(SyscallError) -> Int in
                let fd = descriptor
                let written = try Host.write(fd, bytes, at: nil)
                offset = Int64(try Host.stat(fd).st_size)
                return written
            }
        }
        return try super.write(bytes, at: position, waiter: waiter)
    }

    override public func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        guard position >= 0 else { throw .einval }
        let written = try Host.write(descriptor, bytes, at: position)
        return (written, position + Int64(written))
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        var result = Host.attributes(from: try Host.stat(descriptor))
        result.device = location?.dentry.filesystem?.deviceNumber ?? result.device
        return result
    }

    override public func truncate(to length: Int64) throws(SyscallError) {
        guard length >= 0 else { throw .einval }
        _ = try Host.retrying { ftruncate(descriptor, off_t(length)) }
    }

    override public func sync() throws(SyscallError) {
        _ = try Host.retrying { fsync(descriptor) }
    }

    /// The host file system reserves the blocks (or refuses the mode).
    override public func allocate(mode: Int32, offset: Int64, length: Int64) throws(SyscallError) {
        _ = try Host.retrying { cshim_fallocate(descriptor, mode, offset, length) }
    }

    override public var isMappable: Bool { true }

    // MARK: MappableFile

    public func readForMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError)
        -> Int {
        let fd = descriptor
        // Past INT64_MAX (a mapping grown by mremap) is past the end of any file.
        guard let position = off_t(exactly: offset) else { return 0 }
        return try Host.retrying { pread(fd, buffer.baseAddress, buffer.count, position) }
    }

    public func writeFromMapping(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(SyscallError) {
        let fd = descriptor
        let size = UInt64(max(0, try Host.stat(fd).st_size))
        guard offset < size else { return }
        let count = Int(min(UInt64(buffer.count), size - offset))
        _ = try Host.retrying { pwrite(fd, buffer.baseAddress, count, off_t(offset)) }
    }

    public func sizeForMapping() throws(SyscallError) -> UInt64 {
        UInt64(max(0, try Host.stat(descriptor).st_size))
    }

    public func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        (location?.dentry.inode as? HostInode)?.sharedPages(memoryFile: memoryFile) ?? SharedMemory(memoryFile: memoryFile)
    }

    public var mappingName: String {
        location.flatMap { VirtualFilesystem.absolutePath(of: $0) } ?? ""
    }
}

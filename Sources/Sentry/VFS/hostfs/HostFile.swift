import CShim
import Glibc
import State
import Synchronization

/// An open regular file of the rootfs: a host FD with the application's access
/// mode, read and written at our offset (pread/pwrite; O_APPEND writes go
/// through the host's append). Saved as how to open it again: its path below
/// the rootfs, and the size and modification time it had at the checkpoint,
/// so a restore refuses a file that is gone or changed. A file the container
/// deleted while holding it open is saved with its contents instead (CRIU's
/// ghost files) and restored as an unlinked file only the container sees.
public final class HostFile: FileDescription, MappableFile, @unchecked Sendable { // offset guarded by FileDescription.lock, the FD by `hostFD`
    override public class var savedTypeName: String { "hostfs.File" }
    override public class var notSaved: Set<String> {
        super.notSaved.union([
            "hostFD", // host-only: reopened from the saved path after load
            "isGhost", // host-only: set when a restore makes the deleted file again
        ])
    }
    /// What save(to:) reads from the host file at the checkpoint lands in these on load.
    override public class var savedAs: [String: String] {
        super.savedAs.merging(["savedPath": "path", "savedSize": "size", "savedModification": "modificationTime",
                               "savedInode": "hostInode", "savedGhost": "ghost", "savedGhostMode": "ghostMode"]) { $1 }
    }

    /// Its own lock: read paths take it while FileDescription.lock is held,
    /// MM fills while the MM's is (file data in VFSLock's order).
    /// nil once no FD refers to the file (`released`): a mapping that keeps
    /// it opens the file again for each access, so the host FDs the
    /// application holds stay within its RLIMIT_NOFILE.
    private let hostFD = Mutex<HostDescriptor?>(nil)
    /// Filled at save time, checked at reopen.
    private var savedPath: [String] = []
    private var savedSize: Int64 = 0
    private var savedModification = FileTime(seconds: 0, nanoseconds: 0)
    private var savedInode: UInt64 = 0
    /// A deleted file's contents, from the image, until the reopen makes the file again.
    private var savedGhost: [UInt8]?
    /// A deleted file's permission bits as the host file had them (an fchmod
    /// after the unlink reaches only the host file); nil in older images.
    private var savedGhostMode: UInt32?
    /// Not saved: the host file is one a restore made for a deleted file. Its
    /// host FD may be shared with other descriptions of it, so O_APPEND is
    /// done here rather than by the host.
    private var isGhost = false

    /// The most bytes of deleted files' contents one image carries.
    public static let ghostLimit = 64 << 20
    /// What the checkpoint being written has saved of deleted files: bytes, and
    /// the inodes counted (two descriptions of one file count once).
    private static let ghostBudget = Mutex(GhostBudget())

    private struct GhostBudget {
        var bytes = 0
        var inodes = Set<ObjectIdentifier>()
    }

    /// Starts counting deleted files' bytes against `ghostLimit` for a new image.
    public static func beginCheckpoint() {
        ghostBudget.withLock { $0 = GhostBudget() }
    }

    public required init() { super.init() }

    init(hostFD: Int32, location: VirtualPath, flags: UInt32) {
        self.hostFD.withLock { $0 = HostDescriptor(hostFD) }
        super.init(location: location, flags: flags)
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

    /// Runs `body` with the host FD: the one held, or (for a file only a
    /// mapping keeps) the file opened again by name, if it is still the same file.
    private func withDescriptor<T>(_ body: (Int32) throws(SyscallError) -> T) throws(SyscallError) -> T {
        if let held = hostFD.withLock({ $0 }) { return try held.withFD(body) }
        guard let location, !location.dentry.isDeleted, let parent = location.dentry.parent,
              let filesystem = location.dentry.filesystem as? HostFilesystem,
              let inode = location.dentry.inode as? HostInode else { throw .eio }
        let name = location.dentry.name
        let fd = try filesystem.directory(parent).withFD { parentFD throws(SyscallError) in
            try Host.openBeneath(parentFD, [name], flags: Self.hostFlags(for: flags) | O_NONBLOCK)
        }
        defer { close(fd) }
        let status = try Host.stat(fd)
        guard status.st_mode & S_IFMT == S_IFREG, UInt64(status.st_ino) == inode.hostInode,
              UInt64(status.st_dev) == inode.hostDevice else { throw .eio }
        return try body(fd)
    }

    /// Closes the host FD now, for a kernel that is thrown away (Kernel.discard):
    /// the description is never used again.
    func closeHostDescriptor() {
        hostFD.withLock { $0 = nil }
    }

    /// A file with no name to open it by again (deleted, or restored from a
    /// checkpoint's copy) keeps its host FD for its mappings.
    override public func released() {
        guard !isGhost, let location, !location.dentry.isDeleted else { return }
        hostFD.withLock { $0 = nil }
    }

    /// A new description with `flags` of this file, whose name is gone: it
    /// shares the host FD's file (there is no name to open it by), so this
    /// one's host access must cover `flags` and the append flag agree, unless
    /// it is a restored deleted file (read-write, append done here).
    func reopenShared(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> HostFile {
        if !isGhost {
            let mine = self.flags & LinuxFile.accessModeMask, wanted = flags & LinuxFile.accessModeMask
            guard mine == wanted || mine == LinuxFile.readWrite,
                  (flags & LinuxFile.append != 0) == isAppending else { throw .eacces }
        }
        let duplicate = try withDescriptor { fd throws(SyscallError) in try Host.retrying { fcntl(fd, F_DUPFD_CLOEXEC, 0) } }
        let file = HostFile(hostFD: duplicate, location: location, flags: flags)
        file.isGhost = isGhost
        return file
    }

    /// The host FD of a restored deleted file, again, for another description of it.
    func duplicateGhostDescriptor() -> Int32? {
        guard isGhost else { return nil }
        guard let held = hostFD.withLock({ $0 }) else { return nil }
        let fd = fcntl(held.fd, F_DUPFD_CLOEXEC, 0)
        return fd >= 0 ? fd : nil
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        guard let location else { throw StateError.invalidValue("hostfs: an open file without a location") }
        let host: stat
        var ghost: [UInt8]?
        if location.dentry.isDeleted {
            // A deleted file keeps its host FD (`released`): there is no name to open.
            guard let held = hostFD.withLock({ $0 }) else {
                throw StateError.invalidValue("hostfs: a deleted file has no host FD left to save it from")
            }
            host = try Host.stat(held.fd)
            ghost = try withExtendedLifetime(held) { try Self.ghostContents(fd: held.fd, size: Int64(host.st_size), location) }
        } else {
            host = try withDescriptor { fd throws(SyscallError) in try Host.stat(fd) }
        }
        try sink.save("path", location.dentry.pathComponents)
        try sink.save("size", Int64(host.st_size))
        try sink.save("modificationTime", FileTime(host.st_mtim))
        try sink.save("hostInode", UInt64(host.st_ino))
        try sink.save("ghost", ghost)
        try sink.save("ghostMode", ghost == nil ? nil : UInt32(host.st_mode) & LinuxFile.permissionMask)
    }

    /// The whole of a deleted file, counted against the image's `ghostLimit`.
    private static func ghostContents(fd: Int32, size: Int64, _ location: VirtualPath) throws -> [UInt8] {
        let name = "/" + location.dentry.pathComponents.joined(separator: "/")
        let admitted = ghostBudget.withLock { budget -> Bool in
            guard budget.inodes.insert(ObjectIdentifier(location.dentry.inode)).inserted else { return true }
            guard size >= 0, size <= Int64(ghostLimit - budget.bytes) else { return false }
            budget.bytes += Int(size)
            return true
        }
        guard admitted else {
            throw StateError.invalidValue("hostfs: the deleted file \(name), still open, holds \(size) bytes; an image "
                + "carries at most \(ghostLimit >> 20) MiB of deleted files' contents")
        }
        var contents: [UInt8] = []
        contents.reserveCapacity(Int(size))
        while contents.count < Int(size) {
            let chunk = try Host.read(fd, count: min(1 << 20, Int(size) - contents.count), at: Int64(contents.count))
            if chunk.isEmpty { break }
            contents += chunk
        }
        return contents
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        savedPath = try source.load("path")
        savedSize = try source.load("size")
        savedModification = try source.load("modificationTime")
        savedInode = try source.load("hostInode")
        savedGhost = try source.load("ghost", default: nil)
        savedGhostMode = try source.load("ghostMode", default: nil)
        if let mode = savedGhostMode {
            try ImageValidation.require(mode & ~LinuxFile.permissionMask == 0, field: "ghostMode",
                                        "mode \(String(mode, radix: 8)) has bits beyond the permissions")
        }
        if let ghost = savedGhost, ghost.count > Self.ghostLimit || Int64(ghost.count) != savedSize {
            throw StateError.invalidValue("hostfs: a deleted file of \(savedSize) bytes saved with \(ghost.count)")
        }
        try ImageValidation.components(savedPath, field: "path")
        try ImageValidation.require(savedSize >= 0, field: "size", "negative size \(savedSize)")
    }

    override public func afterLoad() throws {
        try super.afterLoad()
        guard let location, let filesystem = location.dentry.filesystem as? HostFilesystem else {
            throw StateError.invalidValue("hostfs file without a host filesystem")
        }
        try ImageValidation.require(location.dentry.pathComponents == savedPath, field: "path",
                                    "the path to reopen is not where the file was opened")
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
        if let name = filesystem.singleFileName, savedPath != [name] {
            throw HostReopenError(path: display, reason: "not the file of its single-file mount")
        }
        if let ghost = savedGhost {
            let fd: Int32
            do throws(SyscallError) {
                // Another description of the same deleted file may have made it already.
                if let shared = (location?.inode as? HostInode)?.restoredGhostDescriptor() {
                    fd = shared
                } else {
                    fd = try makeGhost(ghost, in: filesystem)
                }
            } catch {
                throw HostReopenError(path: display + " (deleted)",
                                      reason: "cannot make it again: \(String(cString: strerror(error.rawValue)))")
            }
            savedGhost = nil
            isGhost = true
            replaceDescriptor(with: fd)
            (location?.inode as? HostInode)?.remember(self)
            return
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
        let modification = FileTime(host.st_mtim)
        guard Int64(host.st_size) == savedSize, modification == savedModification else {
            close(fd)
            throw HostReopenError(path: display, reason: "the file changed since the checkpoint (size \(savedSize) "
                + "→ \(host.st_size), modified \(Self.timestamp(savedModification)) → \(Self.timestamp(modification)); a copy must keep both, "
                + "as cp -a and rsync -a do)")
        }
        replaceDescriptor(with: fd)
        (location?.inode as? HostInode)?.remember(self)
    }

    /// A modification time as seconds and nanoseconds, the precision the check uses.
    private static func timestamp(_ time: FileTime) -> String {
        let nanoseconds = String(time.nanoseconds)
        return "\(time.seconds).\(String(repeating: "0", count: max(0, 9 - nanoseconds.count)))\(nanoseconds)"
    }

    /// A file only mappings keep is opened when they need it, unless it has
    /// no name to be opened by.
    private func replaceDescriptor(with fd: Int32) {
        let reopened = HostDescriptor(fd)
        let kept = hasReferences || isGhost ? reopened : nil
        hostFD.withLock { $0 = kept }
    }

    /// A deleted file made again from its saved contents: an unnamed host file
    /// (O_TMPFILE beside the mount's root, else a memfd) with the inode's mode,
    /// owner and modification time, so only the container reaches it.
    private func makeGhost(_ contents: [UInt8], in filesystem: HostFilesystem) throws(SyscallError) -> Int32 {
        let (inodeMode, uid, gid) = location.map { path in path.inode.lock.withLock { _ in
            (path.inode.mode, path.inode.uid, path.inode.gid) } } ?? (0o600, 0, 0)
        let mode = savedGhostMode ?? inodeMode
        let fd: Int32
        let temporaryFile = Int32(bitPattern: LinuxFile.temporaryFile)
        if let unnamed = try? filesystem.rootDirectory().withFD({ root throws(SyscallError) in
            try Host.openAt(root, ".", temporaryFile | O_RDWR, mode & 0o7777)
        }) {
            fd = unnamed
        } else {
            let memfd = cshim_memfd_create("runsc-ghost", CSHIM_MFD_CLOEXEC)
            guard memfd >= 0 else { throw SyscallError(rawValue: -memfd) ?? .eio }
            fd = memfd
        }
        do throws(SyscallError) {
            var written = 0
            while written < contents.count {
                let chunk = Array(contents[written..<min(contents.count, written + (1 << 20))])
                let count = try Host.write(fd, chunk, at: Int64(written))
                guard count > 0 else { throw .eio }
                written += count
            }
            _ = try Host.retrying { fchmod(fd, mode_t(mode & LinuxFile.permissionMask)) }
            _ = fchown(fd, uid, gid)
            var times = [HostInode.hostTime(nil), HostInode.hostTime(savedModification)]
            _ = try Host.retrying { futimens(fd, &times) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    override public func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] {
        guard position >= 0 else { throw .einval }
        var bytes = try withDescriptor { fd throws(SyscallError) in try Host.read(fd, count: count, at: position) }
        if let cache = pageCache, let start = UInt64(exactly: position) {
            bytes.withUnsafeMutableBytes { Self.copyCachedPages(of: cache, into: $0, at: start) }
        }
        return bytes
    }

    /// The inode's MAP_SHARED page cache, if the file has been mapped shared:
    /// read and write go through its present pages (the host file holds the
    /// rest), so they and the mappings see one copy of the bytes, as Linux's
    /// page cache gives. Without one (the usual case) the host file alone.
    private var pageCache: SharedMemory? { (location?.dentry.inode as? HostInode)?.pageCache }

    /// The cached pages' bytes over `bytes`, read from the host file at
    /// `position`: a mapping's stores not yet written back. A page filled
    /// meanwhile holds what the host read gave.
    private static func copyCachedPages(of cache: SharedMemory, into target: UnsafeMutableRawBufferPointer, at start: UInt64) {
        guard let memoryFile = cache.memoryFile, let base = target.baseAddress, !target.isEmpty else { return }
        for (range, offset) in cachedRuns(of: cache, start..<start + UInt64(target.count)) {
            guard let source = memoryFile.pointer(at: offset, count: UInt64(range.count)) else { continue }
            (base + Int(range.lowerBound - start)).copyMemory(from: source, byteCount: range.count)
        }
    }

    /// Puts `bytes`, just written to the host file at `position`, in the
    /// pages of `cache` they fall in, so the mappings see them. A page filled
    /// meanwhile read them from the host file already.
    private static func copyIntoCachedPages(of cache: SharedMemory, _ bytes: ArraySlice<UInt8>, at position: Int64) {
        guard let memoryFile = cache.memoryFile, !bytes.isEmpty, let start = UInt64(exactly: position) else { return }
        let end = start + UInt64(bytes.count)
        bytes.withUnsafeBytes { source in
            guard let base = source.baseAddress else { return }
            for (range, offset) in cachedRuns(of: cache, start..<end) {
                guard let target = memoryFile.pointer(at: offset, count: UInt64(range.count)) else { continue }
                target.copyMemory(from: base + Int(range.lowerBound - start), byteCount: range.count)
            }
        }
    }

    /// The parts of the file's `range` that cached pages hold: (file range,
    /// MemoryFile offset of its first byte).
    private static func cachedRuns(of cache: SharedMemory, _ range: Range<UInt64>) -> [(Range<UInt64>, UInt64)] {
        let pages = (range.lowerBound >> Page.shift)..<((range.upperBound - 1) >> Page.shift) + 1
        return cache.presentPages(in: pages).map { index, offset in
            let pageStart = index << Page.shift
            let lower = max(pageStart, range.lowerBound), upper = min(pageStart + Page.size, range.upperBound)
            return (lower..<upper, offset + (lower - pageStart))
        }
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        if position == nil, isAppending {
            return try lock.withLock { _ throws(SyscallError) -> Int in
                try withDescriptor { fd throws(SyscallError) in
                    let end = isGhost ? Int64(try Host.stat(fd).st_size) : nil
                    let written = try Host.write(fd, bytes, at: end)
                    offset = Int64(try Host.stat(fd).st_size)
                    if let cache = pageCache {
                        Self.copyIntoCachedPages(of: cache, bytes[..<min(written, bytes.count)], at: offset - Int64(written))
                    }
                    return written
                }
            }
        }
        return try super.write(bytes, at: position, waiter: waiter)
    }

    override public func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        guard position >= 0 else { throw .einval }
        let written = try withDescriptor { fd throws(SyscallError) in try Host.write(fd, bytes, at: position) }
        if let cache = pageCache { Self.copyIntoCachedPages(of: cache, bytes[..<min(written, bytes.count)], at: position) }
        return (written, position + Int64(written))
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        var result = try withDescriptor { fd throws(SyscallError) in Host.attributes(from: try Host.stat(fd)) }
        result.device = location?.dentry.filesystem?.deviceNumber ?? result.device
        return result
    }

    /// Through the host FD, so an unlinked file's attributes still change.
    override public func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        if let size = change.size { try truncate(to: size) }
        try withDescriptor { fd throws(SyscallError) in try Self.setAttributes(change, fd: fd) }
    }

    private static func setAttributes(_ change: AttributeChange, fd: Int32) throws(SyscallError) {
        if let mode = change.mode {
            _ = try Host.retrying { fchmod(fd, mode_t(mode & LinuxFile.permissionMask)) }
        }
        if change.uid != nil || change.gid != nil {
            let uid = change.uid.map { uid_t($0) } ?? uid_t.max
            let gid = change.gid.map { gid_t($0) } ?? gid_t.max
            _ = try Host.retrying { fchown(fd, uid, gid) }
        }
        if change.accessTime != nil || change.modificationTime != nil {
            var times = [change.accessTime, change.modificationTime].map(HostInode.hostTime)
            _ = try Host.retrying { futimens(fd, &times) }
        }
    }

    override public func truncate(to length: Int64) throws(SyscallError) {
        guard length >= 0 else { throw .einval }
        _ = try withDescriptor { fd throws(SyscallError) in try Host.retrying { ftruncate(fd, off_t(length)) } }
        pageCache?.truncate(to: UInt64(length))
    }

    override public func sync() throws(SyscallError) {
        _ = try withDescriptor { fd throws(SyscallError) in try Host.retrying { fsync(fd) } }
    }

    /// The host file system reserves the blocks (or refuses the mode).
    override public func allocate(mode: Int32, offset: Int64, length: Int64) throws(SyscallError) {
        _ = try withDescriptor { fd throws(SyscallError) in try Host.retrying { cshim_fallocate(fd, mode, offset, length) } }
    }

    override public var isMappable: Bool { true }

    /// The host file's identity and the version of its contents, for the
    /// executable cache: from the open file itself, not its name.
    public func cacheVersion() throws(SyscallError) -> (FileCache.Identity, FileCache.Version)? {
        FileCache.identityAndVersion(of: try withDescriptor { fd throws(SyscallError) in try Host.stat(fd) })
    }

    // MARK: MappableFile

    public func readForMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError)
        -> Int {
        // Past INT64_MAX (a mapping grown by mremap) is past the end of any file.
        guard let position = off_t(exactly: offset) else { return 0 }
        return try withDescriptor { fd throws(SyscallError) in
            try Host.retrying { pread(fd, buffer.baseAddress, buffer.count, position) }
        }
    }

    /// The host file's bytes with the page cache's over them, as read gives:
    /// stores through a shared mapping not yet written back included.
    public func readForPrivateMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError)
        -> Int {
        let count = try readForMapping(into: buffer, at: offset)
        if let cache = pageCache, count > 0 {
            Self.copyCachedPages(of: cache, into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<count]), at: offset)
        }
        return count
    }

    public var hasSharedPageCache: Bool { pageCache != nil }

    /// Spliced from the host file into the memfd: the host copies from its
    /// page cache into memfd pages it need not clear first, where a
    /// prefault cleared them and pread copied over them (6.1 against 3.4 ms
    /// for python3's 6.5 MiB here).
    public func copyForMapping(into memoryFile: MemoryFile, at memoryOffset: UInt64, count: Int) -> Bool {
        guard pageCache == nil, count > 0, memoryFile.fd >= 0 else { return false }
        let result = try? withDescriptor { fd throws(SyscallError) in
            cshim_splice_file(fd, memoryFile.fd, memoryOffset, count)
        }
        return result == 0
    }

    /// Bytes the file already holds are not written again: Linux writes back
    /// only dirty pages, so a write-back of unchanged pages (at exit after a
    /// checkpoint wrote them) must not change the file's modification time.
    public func writeFromMapping(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(SyscallError) {
        try withDescriptor { fd throws(SyscallError) in
            let size = UInt64(max(0, try Host.stat(fd).st_size))
            guard offset < size, let position = Int64(exactly: offset) else { return }
            let count = Int(min(UInt64(buffer.count), size - offset))
            let current = try Host.read(fd, count: count, at: position)
            if current.count == count, current.elementsEqual(UnsafeRawBufferPointer(rebasing: buffer[..<count])) { return }
            _ = try Host.retrying { pwrite(fd, buffer.baseAddress, count, off_t(position)) }
        }
    }

    public func sizeForMapping() throws(SyscallError) -> UInt64 {
        try withDescriptor { fd throws(SyscallError) in UInt64(max(0, try Host.stat(fd).st_size)) }
    }

    public func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        (location?.dentry.inode as? HostInode)?.sharedPages(memoryFile: memoryFile) ?? SharedMemory(memoryFile: memoryFile)
    }

    public var mappingName: String {
        location.flatMap { VirtualFilesystem.absolutePath(of: $0) } ?? ""
    }
}

import Glibc
import State
import Synchronization

/// A tmpfs file's bytes, in MemoryFile pages allocated when first written
/// (a sparse file costs only what was written). The pages are the
/// SharedMemory every MAP_SHARED mapping of the file maps, so read, write
/// and the mappings see one copy; they count against the mount's `size=`
/// and the container's memory limit, and a checkpoint saves them in
/// pages.img with the rest of the memory.
public final class TmpfsRegularFile: Inode, @unchecked Sendable { // data guarded by Inode.lock
    override public class var savedTypeName: String { "tmpfs.RegularFile" }
    override public class var notSaved: Set<String> {
        super.notSaved.union([
            "legacyPages", // only loaded from images of older builds
            "legacyShared", // only loaded from images of older builds
            "mappingLock", // a lock
        ])
    }
    override public class var loadedType: FileType? { .regular }
    static let pageSize = Int(Page.size)

    private var size: Int64 = 0
    /// nil until the first page is written (the filesystem's MemoryFile is
    /// attached after the inode may be made), or for a file loaded from an
    /// older image until its data moves in (`moveLegacyData`).
    private var data: SharedMemory?
    /// From an image that kept the bytes in state.img: the bytes, and the
    /// page cache MAP_SHARED mappings had (which wins where both have a page).
    private var legacyPages: [Int64: [UInt8]] = [:]
    private var legacyShared: SharedMemory?
    /// File seals (F_SEAL_*): every tmpfs file is sealed against sealing
    /// (F_SEAL_SEAL) but a memfd made with MFD_ALLOW_SEALING.
    private var seals = MemfdABI.F_SEAL_SEAL
    /// Held across a shared mapping's seal check and its insertion into the
    /// MM, and across F_SEAL_WRITE's walk of the MMs and the seal's
    /// addition, so a shared writable mapping never slips in between (Linux's
    /// i_mmap_writable count). Taken before any MM's lock.
    let mappingLock = Mutex<Void>(())

    deinit {
        // The last name and the last open file are gone: the data goes, as
        // Linux's tmpfs frees an evicted inode's pages.
        data?.release()
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let (size, data) = lock.withLock { _ in (self.size, self.data) }
        try sink.save("size", size)
        try sink.save("data", data)
        try sink.save("seals", lock.withLock { _ in seals })
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let size: Int64 = try source.load("size")
        let data: SharedMemory? = try source.load("data", default: nil)
        let pages: [Int64: [UInt8]] = try source.load("pages", default: [:])
        let shared: SharedMemory? = try source.load("shared", default: nil)
        let seals: UInt32 = try source.load("seals", default: MemfdABI.F_SEAL_SEAL)
        try ImageValidation.require(seals & ~MemfdABI.allSeals == 0, field: "seals", "unknown seals 0x\(String(seals, radix: 16))")
        guard size >= 0, pages.allSatisfy({ $0.key >= 0 && $0.value.count == Self.pageSize }) else {
            throw StateError.invalidValue("tmpfs file with size \(size) and malformed pages", field: "size")
        }
        lock.withLock { _ in
            self.size = size
            self.data = data
            legacyPages = pages
            legacyShared = shared
            self.seals = seals
        }
    }

    override public func afterLoad() throws {
        let (contents, legacy) = lock.withLock { _ in (data, data == nil && (!legacyPages.isEmpty || legacyShared != nil)) }
        // Whatever the image says, a file's data is never filled from or written back to the file.
        contents?.becomeContents()
        if let contents, let filesystem = filesystem as? TmpfsFilesystem { contents.setQuota(filesystem) }
        if legacy { (filesystem as? TmpfsFilesystem)?.registerLegacy(self) }
    }

    /// Moves an older image's bytes (and mapped pages) into MemoryFile pages.
    func moveLegacyData(into memoryFile: MemoryFile) throws(SyscallError) {
        let filesystem = filesystem as? TmpfsFilesystem
        try lock.withLock { _ throws(SyscallError) in
            let contents = legacyShared ?? SharedMemory(memoryFile: memoryFile, holdsContents: true)
            contents.becomeContents()
            if let filesystem {
                // An older image's mapped pages: its tmpfs had no size= to exceed.
                _ = filesystem.chargePages(contents.pageCount)
                contents.setQuota(filesystem)
            }
            for (index, bytes) in legacyPages.sorted(by: { $0.key < $1.key }) {
                let page = UInt64(index)
                if contents.existingPage(page) != nil { continue }
                let offset = try contents.page(page) { buffer throws(SyscallError) in buffer.copyBytes(from: bytes) }
                guard memoryFile.pointer(at: offset, count: Page.size) != nil else { throw .eio }
            }
            data = contents
            legacyPages = [:]
            legacyShared = nil
        }
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.size = size
            result.blocks = Int64(data?.pageCount ?? 0) * Int64(Self.pageSize / 512)
            return result
        }
    }

    override public func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        // The stubs let the cut pages go after the inode's lock (they take MM locks, which come first).
        let cut = try lock.withLock { _ throws(SyscallError) -> (SharedMemory, UInt64)? in
            var cut: (SharedMemory, UInt64)?
            if let newMode = change.mode, seals & MemfdABI.F_SEAL_EXEC != 0,
               (newMode ^ mode) & MemfdABI.executeBits != 0 { throw .eperm }
            if let newSize = change.size {
                guard newSize >= 0 else { throw .einval }
                guard newSize <= Self.maximumSize else { throw .efbig }
                if newSize < size && seals & MemfdABI.F_SEAL_SHRINK != 0
                    || newSize > size && seals & MemfdABI.F_SEAL_GROW != 0 { throw .eperm }
                if newSize != size {
                    if newSize < size, let data { cut = (data, Self.pagesHolding(newSize)) }
                    resize(to: newSize)
                    modificationTime = FileTime.now()
                }
            }
            applyBaseChange(change)
            return cut
        }
        if let (data, kept) = cut { data.unmapFromMappers(from: kept) }
    }

    /// How many pages `size` bytes fill, rounded up without size + pageSize - 1,
    /// which overflows near MAX_LFS_FILESIZE.
    private static func pagesHolding(_ size: Int64) -> UInt64 {
        let pageSize = Int64(Self.pageSize)
        return UInt64(size / pageSize + (size % pageSize == 0 ? 0 : 1))
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        TmpfsFile(location: location, flags: flags)
    }

    /// MAX_LFS_FILESIZE.
    static let maximumSize = Int64.max

    /// Up to `count` bytes from `position` (fewer at the end of the file).
    public func read(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] {
        try lock.withLock { _ throws(SyscallError) -> [UInt8] in
            guard position < size, count > 0 else { return [] }
            let total = Int(min(Int64(count), size - position))
            var out = [UInt8](repeating: 0, count: total)
            var failure: SyscallError?
            out.withUnsafeMutableBytes { buffer in
                guard let base = buffer.baseAddress, let data else { return }
                var done = 0
                while done < total {
                    let cursor = position + Int64(done)
                    let within = Int(cursor % Int64(Self.pageSize))
                    let length = min(Self.pageSize - within, total - done)
                    if let offset = data.existingPage(UInt64(cursor / Int64(Self.pageSize))) {
                        guard let source = data.memoryFile?.pointer(at: offset, count: Page.size) else {
                            failure = .eio
                            return
                        }
                        (base + done).copyMemory(from: source + within, byteCount: length)
                    }
                    done += length
                }
            }
            if let failure { throw failure }
            accessTime = FileTime.now()
            return out
        }
    }

    /// Writes at `position`, or at the end when `append`; returns the count
    /// and the end offset. Past the mount's `size=` the write stops short
    /// (ENOSPC if nothing fit), as Linux's tmpfs; a page the container's
    /// memory limit refuses is ENOMEM (and the task is OOM-killed).
    public func write(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        let filesystem = filesystem as? TmpfsFilesystem
        return try lock.withLock { _ throws(SyscallError) -> (written: Int, end: Int64) in
            let start = append ? size : position
            guard start >= 0 else { throw .einval }
            let (end, overflow) = start.addingReportingOverflow(Int64(bytes.count))
            guard !overflow, end <= Self.maximumSize else { throw .efbig }
            guard !bytes.isEmpty else { return (0, start) }
            if seals & (MemfdABI.F_SEAL_WRITE | MemfdABI.F_SEAL_FUTURE_WRITE) != 0
                || seals & MemfdABI.F_SEAL_GROW != 0 && end > size { throw .eperm }
            guard let filesystem, let memoryFile = filesystem.memoryFile else { throw .enospc }
            let contents = data ?? Self.makeContents(memoryFile, filesystem)
            data = contents
            let pageSize = Int64(Self.pageSize)
            let (offsets, failure) = contents.pages(UInt64(start / pageSize)..<UInt64((end - 1) / pageSize + 1))
            var done = 0
            var copyFailure: SyscallError?
            bytes.withUnsafeBytes { source in
                guard let base = source.baseAddress else { return }
                for offset in offsets {
                    let within = Int((start + Int64(done)) % pageSize)
                    let length = min(Self.pageSize - within, bytes.count - done)
                    guard let target = memoryFile.pointer(at: offset, count: Page.size) else {
                        copyFailure = .eio
                        return
                    }
                    (target + within).copyMemory(from: base + done, byteCount: length)
                    done += length
                }
            }
            if done == 0, let failure = copyFailure ?? failure { throw failure }
            let written = start + Int64(done)
            if written > size { size = written }
            let now = FileTime.now()
            modificationTime = now
            changeTime = now
            return (done, written)
        }
    }

    /// Takes the pages of `length` bytes at `offset` (zeros where none was
    /// written) and, unless `keepSize`, grows the size to the range's end.
    /// Past the mount's `size=` it is ENOSPC with the size unchanged; the
    /// pages already taken stay, where Linux gives them back.
    func allocate(offset: Int64, length: Int64, keepSize: Bool) throws(SyscallError) {
        let filesystem = filesystem as? TmpfsFilesystem
        try lock.withLock { _ throws(SyscallError) in
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard offset >= 0, length > 0, !overflow, end <= Self.maximumSize else { throw .efbig }
            // shmem_fallocate: growing past the size is refused under F_SEAL_GROW, KEEP_SIZE or not.
            if seals & MemfdABI.F_SEAL_GROW != 0, end > size { throw .eperm }
            guard let filesystem, let memoryFile = filesystem.memoryFile else { throw .enospc }
            let contents = data ?? Self.makeContents(memoryFile, filesystem)
            data = contents
            let pageSize = Int64(Self.pageSize)
            let (_, failure) = contents.pages(UInt64(offset / pageSize)..<UInt64((end - 1) / pageSize + 1))
            if let failure { throw failure }
            if !keepSize, end > size { size = end }
            // file_modified at shmem_fallocate's start: mtime and ctime, whatever the mode.
            let now = FileTime.now()
            modificationTime = now
            changeTime = now
        }
    }

    public var currentSize: Int64 { lock.withLock { _ in size } }

    var currentSeals: UInt32 { lock.withLock { _ in seals } }

    /// A new memfd's seals.
    func setSeals(_ newSeals: UInt32) {
        lock.withLock { _ in seals = newSeals }
    }

    /// F_ADD_SEALS after the syscall's checks: EPERM once F_SEAL_SEAL is set.
    func addSeals(_ added: UInt32) throws(SyscallError) {
        try lock.withLock { _ throws(SyscallError) in
            guard seals & MemfdABI.F_SEAL_SEAL == 0 else { throw .eperm }
            seals |= added
        }
    }

    /// The file's data if it has any: what its MAP_SHARED mappings map (none without it).
    var mappedContents: SharedMemory? { lock.withLock { _ in data } }

    /// The pages every MAP_SHARED mapping shares: the file's data itself.
    func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        lock.withLock { _ in
            if let data { return data }
            let made = Self.makeContents(memoryFile, filesystem as? TmpfsFilesystem)
            data = made
            return made
        }
    }

    /// A file's first page: its data, charged to its mount's `size=`.
    private static func makeContents(_ memoryFile: MemoryFile, _ filesystem: TmpfsFilesystem?) -> SharedMemory {
        let contents = SharedMemory(memoryFile: memoryFile, holdsContents: true)
        if let filesystem { contents.setQuota(filesystem) }
        return contents
    }

    /// Drops pages past the new end and zeroes the tail of the last one, so a
    /// later growth reads zeros.
    private func resize(to newSize: Int64) {
        if newSize < size, let data {
            let pageSize = Int64(Self.pageSize)
            data.removePages(from: Self.pagesHolding(newSize))
            let within = Int(newSize % pageSize)
            if within != 0, let offset = data.existingPage(UInt64(newSize / pageSize)),
               let pointer = data.memoryFile?.pointer(at: offset, count: Page.size) {
                (pointer + within).initializeMemory(as: UInt8.self, repeating: 0, count: Self.pageSize - within)
            }
        }
        size = newSize
        changeTime = FileTime.now()
    }
}

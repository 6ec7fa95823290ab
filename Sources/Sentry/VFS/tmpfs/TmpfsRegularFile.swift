import State

/// A tmpfs file's bytes, kept in 4 KiB pages so a sparse file (ftruncate to a
/// large size, a write far past the end) costs only what was written.
public final class TmpfsRegularFile: Inode, @unchecked Sendable { // data guarded by Inode.lock
    override public class var savedTypeName: String { "tmpfs.RegularFile" }
    static let pageSize = 4096

    private var size: Int64 = 0
    private var pages: [Int64: [UInt8]] = [:]
    /// The page cache MAP_SHARED mappings share, made on the first one.
    private var shared: SharedMemory?

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        let (size, pages) = lock.withLock { _ in (self.size, self.pages) }
        try sink.save("size", size)
        try sink.save("pages", pages)
        try sink.save("shared", lock.withLock { _ in shared })
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let size: Int64 = try source.load("size")
        let pages: [Int64: [UInt8]] = try source.load("pages")
        let shared: SharedMemory? = try source.load("shared", default: nil)
        guard size >= 0, pages.allSatisfy({ $0.key >= 0 && $0.value.count == Self.pageSize }) else {
            throw StateError.invalidValue("tmpfs file with size \(size) and malformed pages")
        }
        lock.withLock { _ in
            self.size = size
            self.pages = pages
            self.shared = shared
        }
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.size = size
            result.blocks = Int64(pages.count) * Int64(Self.pageSize / 512)
            return result
        }
    }

    override public func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        try lock.withLock { _ throws(SyscallError) in
            if let newSize = change.size {
                guard newSize >= 0 else { throw .einval }
                guard newSize <= Self.maximumSize else { throw .efbig }
                if newSize != size {
                    resize(to: newSize)
                    modificationTime = FileTime.now()
                }
            }
            applyBaseChange(change)
        }
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        TmpfsFile(location: location, flags: flags)
    }

    /// MAX_LFS_FILESIZE.
    static let maximumSize = Int64.max

    /// Up to `count` bytes from `position` (fewer at the end of the file).
    public func read(count: Int, at position: Int64) -> [UInt8] {
        lock.withLock { _ in
            guard position < size, count > 0 else { return [] }
            let end = position + min(Int64(count), size - position)
            var out = [UInt8]()
            out.reserveCapacity(Int(end - position))
            var cursor = position
            while cursor < end {
                let page = cursor / Int64(Self.pageSize)
                let within = Int(cursor % Int64(Self.pageSize))
                let length = Int(min(Int64(Self.pageSize - within), end - cursor))
                if let bytes = pages[page] {
                    out.append(contentsOf: bytes[within..<(within + length)])
                } else {
                    out.append(contentsOf: repeatElement(0, count: length))
                }
                cursor += Int64(length)
            }
            accessTime = FileTime.now()
            return out
        }
    }

    /// Writes at `position`, or at the end when `append`; returns the count and the end offset.
    public func write(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        try lock.withLock { _ throws(SyscallError) -> (written: Int, end: Int64) in
            let start = append ? size : position
            guard start >= 0 else { throw .einval }
            let (end, overflow) = start.addingReportingOverflow(Int64(bytes.count))
            guard !overflow, end <= Self.maximumSize else { throw .efbig }
            var cursor = start
            var index = 0
            while index < bytes.count {
                let page = cursor / Int64(Self.pageSize)
                let within = Int(cursor % Int64(Self.pageSize))
                let length = min(Self.pageSize - within, bytes.count - index)
                // In place: a copy out of the dictionary and back would copy the whole page each time.
                pages[page, default: [UInt8](repeating: 0, count: Self.pageSize)]
                    .replaceSubrange(within..<(within + length), with: bytes[index..<(index + length)])
                cursor += Int64(length)
                index += length
            }
            if end > size { size = end }
            let now = FileTime.now()
            modificationTime = now
            changeTime = now
            return (bytes.count, end)
        }
    }

    public var currentSize: Int64 { lock.withLock { _ in size } }

    func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        lock.withLock { _ in
            if let shared { return shared }
            let made = SharedMemory(memoryFile: memoryFile)
            shared = made
            return made
        }
    }

    /// Drops pages past the new end and zeroes the tail of the last one, so a
    /// later growth reads zeros.
    private func resize(to newSize: Int64) {
        if newSize < size {
            let pageSize = Int64(Self.pageSize)
            // Rounded up without `newSize + pageSize - 1`, which wraps near INT64_MAX (a sparse file may be that big).
            let keptPages = newSize / pageSize + (newSize % pageSize == 0 ? 0 : 1)
            pages = pages.filter { $0.key < keptPages }
            let within = Int(newSize % pageSize)
            if within != 0, var last = pages[newSize / pageSize] {
                for index in within..<Self.pageSize { last[index] = 0 }
                pages[newSize / pageSize] = last
            }
        }
        size = newSize
        changeTime = FileTime.now()
    }
}

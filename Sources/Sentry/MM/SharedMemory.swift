import State
import Synchronization

/// Pages shared by every mapping of one object: a MAP_SHARED|MAP_ANONYMOUS
/// region, or a file's shared page cache. Keyed by page index within the
/// object; the MemoryFile offsets it holds are owned here, not by any MM.
public final class SharedMemory: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.SharedMemory"

    // Guarded by `lock`. Taken under the MM's; takes file data locks (the
    // fill) and the MemoryFile's (see VFSLock).
    private let lock = Mutex<Void>(())
    private var pages: [UInt64: UInt64] = [:]
    public private(set) var memoryFile: MemoryFile?

    public init() {}

    public init(memoryFile: MemoryFile) {
        self.memoryFile = memoryFile
    }

    /// The MemoryFile offset of page `index`, allocating (and filling with
    /// `fill`, e.g. the file's bytes) on first use.
    func page(_ index: UInt64,
              fill: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError) -> UInt64 {
        guard let memoryFile else { throw .enomem }
        return try lock.withLock { _ throws(SyscallError) -> UInt64 in
            if let offset = pages[index] { return offset }
            let offset = try memoryFile.allocate(Page.size)
            if let pointer = memoryFile.pointer(at: offset, count: Page.size) {
                do throws(SyscallError) {
                    try fill(UnsafeMutableRawBufferPointer(start: pointer, count: Int(Page.size)))
                } catch {
                    memoryFile.free(offset: offset, length: Page.size)
                    throw error
                }
            }
            pages[index] = offset
            return offset
        }
    }

    /// Pages present among `indices`, in order: (index, MemoryFile offset).
    func presentPages(in indices: Range<UInt64>) -> [(UInt64, UInt64)] {
        lock.withLock { _ in
            if UInt64(pages.count) < UInt64(indices.count) {
                return pages.filter { indices.contains($0.key) }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            }
            return indices.compactMap { index in pages[index].map { (index, $0) } }
        }
    }

    /// Frees every page (the last mapping is gone).
    func release() {
        let all = lock.withLock { _ in
            let all = pages
            pages = [:]
            return all
        }
        for offset in all.values { memoryFile?.free(offset: offset, length: Page.size) }
    }

    public func save(to sink: inout SaveSink) throws {
        let snapshot = lock.withLock { _ in pages }
        try sink.save("pages", snapshot)
        try sink.save("memoryFile", memoryFile)
    }

    public func load(from source: inout LoadSource) throws {
        pages = try source.load("pages")
        memoryFile = try source.load("memoryFile")
    }
}

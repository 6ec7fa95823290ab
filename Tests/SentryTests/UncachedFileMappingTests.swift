import State
import Testing
@testable import Sentry

/// A host file as the MM sees it, counting the MM's questions about its version.
final class CountingFile: MappableFile, @unchecked Sendable { // touched by one test thread at a time
    static let savedTypeName = "test.CountingFile"
    var size: Int64 = 0
    var changed: Int64 = 0
    var identity = FileCache.Identity(device: 9, inode: 1)
    var versionQueries = 0
    private var shared: SharedMemory?

    required init() {}

    init(size: Int64, changed: Int64) {
        self.size = size
        self.changed = changed
    }

    /// The byte at `offset`.
    static func byte(at offset: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: offset / 4096 &+ offset) }

    func readForMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError) -> Int {
        guard offset < UInt64(size) else { return 0 }
        let count = Int(min(UInt64(buffer.count), UInt64(size) - offset))
        for index in 0..<count { buffer[index] = Self.byte(at: offset + UInt64(index)) }
        return count
    }

    func writeFromMapping(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(SyscallError) {}
    func sizeForMapping() throws(SyscallError) -> UInt64 { UInt64(size) }

    func sharedPages(memoryFile: MemoryFile) -> SharedMemory {
        if let shared { return shared }
        let made = SharedMemory(memoryFile: memoryFile)
        shared = made
        return made
    }

    var mappingName: String { "/counting" }

    func cacheVersion() throws(SyscallError) -> (FileCache.Identity, FileCache.Version)? {
        versionQueries += 1
        return (identity, FileCacheTests.version(size: size, changed: changed))
    }

    func save(to sink: inout SaveSink) throws {}
    func load(from source: inout LoadSource) throws {}
}

/// Faults on a read-only private mapping of a file the cache does not keep
/// ask for the file's version once, not at every fault.
@Suite struct UncachedFileMappingTests {
    static let windows = 4

    /// A read-only private mapping of `file`, faulted in `windows` fault windows; the MM and what it read.
    static func mapAndFault(_ file: CountingFile, _ memoryFile: MemoryFile) throws -> (MemoryManager, [UInt8]) {
        let mm = MemoryManager(memoryFile: memoryFile)
        let mapper = RecordingMapper()
        _ = mm.acquireAddressSpace { mapper }
        let length = UInt64(windows) * MemoryManager.faultWindow
        var request = MemoryManager.MappingRequest(address: 0x4000_0000, length: length, protection: .read, shared: false)
        request.fixed = true
        request.backing = .file(file, offset: 0)
        let base = try mm.map(request)
        // As the host reports them: a window an earlier fault brought in is a stale fault.
        let host = MemoryManager.HostFault(unmapped: true, instructionFetch: false)
        for window in 0..<UInt64(windows) {
            #expect(mm.handleFault(at: base + window * MemoryManager.faultWindow + 8, host: host) == .mapped)
        }
        return (mm, try mm.copyIn(from: base, count: Int(length)))
    }

    static func expected(_ count: Int) -> [UInt8] { (0..<UInt64(count)).map(CountingFile.byte(at:)) }

    @Test func aFileChangedJustNowIsAskedAboutOnceAndReadByTheWindow() throws {
        let memoryFile = try MemoryFile.create(capacity: 1 << 30)
        let length = Self.windows * Int(MemoryManager.faultWindow)
        let file = CountingFile(size: Int64(length), changed: FileTime.now().seconds)
        let (mm, bytes) = try Self.mapAndFault(file, memoryFile)
        #expect(file.versionQueries == 1)
        #expect(bytes == Self.expected(length))
        #expect(memoryFile.fileCache.cachedBytes == 0)
        mm.release()
    }

    @Test func aFileTooLargeToCacheIsAskedAboutOnce() throws {
        let memoryFile = try MemoryFile.create(capacity: 1 << 30)
        let file = CountingFile(size: FileCache.maximumFileSize + 1, changed: FileCacheTests.settled)
        let (mm, bytes) = try Self.mapAndFault(file, memoryFile)
        #expect(file.versionQueries == 1)
        #expect(bytes == Self.expected(bytes.count))
        #expect(memoryFile.fileCache.cachedBytes == 0)
        mm.release()
    }

    @Test func aFileThatSettledLaterIsSharedByALaterMapping() throws {
        let memoryFile = try MemoryFile.create(capacity: 1 << 30)
        let length = Self.windows * Int(MemoryManager.faultWindow)
        let file = CountingFile(size: Int64(length), changed: FileTime.now().seconds)
        let (first, _) = try Self.mapAndFault(file, memoryFile)
        #expect(memoryFile.fileCache.cachedBytes == 0)
        // The same version, long settled now.
        file.changed = FileCacheTests.settled
        let (second, bytes) = try Self.mapAndFault(file, memoryFile)
        #expect(bytes == Self.expected(length))
        #expect(memoryFile.fileCache.cachedBytes == UInt64(length), "the later mapping shares the cache's pages")
        #expect(file.versionQueries == 2, "one question per mapping: the cached file's window is one fault")
        first.release()
        second.release()
    }
}

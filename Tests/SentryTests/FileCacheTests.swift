import CShim
import Glibc
import Platform
import State
import Synchronization
import Testing
@testable import Sentry

/// Exec's cache of host executables in the memory file: a file read once is
/// shared by later execs while its version stands, read again when it
/// changes, never kept while it may still be changing, and let go of
/// entirely before a checkpoint.
@Suite struct FileCacheTests {
    static let identity = FileCache.Identity(device: 8, inode: 42)
    static func version(size: Int64, changed: Int64) -> FileCache.Version {
        FileCache.Version(size: size, modification: FileTime(seconds: changed, nanoseconds: 0),
                                change: FileTime(seconds: changed, nanoseconds: 0))
    }
    static let settled = FileTime.now().seconds - 3600

    /// The cache's bytes of a file of `contents`, counting the reads.
    static func bytes(_ cache: FileCache, _ file: MemoryFile, _ contents: [UInt8],
                      version: FileCache.Version, identity: FileCache.Identity? = identity,
                      reads: inout Int) throws -> ExecutableBytes {
        var count = 0
        let bytes = try #require(try cache.bytes(of: identity, at: version, size: contents.count, memoryFile: file) { buffer in
            count += 1
            buffer.copyBytes(from: contents)
        })
        reads += count
        return bytes
    }

    /// A fill spliced in the host: the file's bytes, the last page's tail
    /// zero (over pages a freed allocation left with other bytes), and a
    /// refusal when the file is shorter than asked (the caller reads it).
    @Test func aSplicedFillCopiesTheFileAndLeavesTheTailZero() throws {
        let path = "/tmp/runsc-splice-test-\(getpid())"
        defer { unlink(path) }
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
        let file = try MemoryFile.create(capacity: 1 << 24)
        let dirty = try file.allocate(3 * Page.size)
        try #require(file.pointer(at: dirty, count: 3 * Page.size))
            .initializeMemory(as: UInt8.self, repeating: 0xee, count: Int(3 * Page.size))
        file.free(offset: dirty, length: 3 * Page.size)
        let offset = try file.allocate(3 * Page.size)
        #expect(cshim_splice_file(fd, file.fd, offset, bytes.count) == 0)
        let pointer = try #require(file.pointer(at: offset, count: 3 * Page.size))
        let copied = UnsafeRawBufferPointer(start: pointer, count: Int(3 * Page.size))
        #expect(Array(copied.prefix(bytes.count)) == bytes)
        #expect(copied.dropFirst(bytes.count).allSatisfy { $0 == 0 })
        #expect(cshim_splice_file(fd, file.fd, offset, bytes.count + 1) == -EIO)
    }

    @Test func aSettledFileIsReadOnceAndItsPagesServeTheNextExec() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let contents = [UInt8](repeating: 7, count: 5000)
        let version = Self.version(size: 5000, changed: Self.settled)
        var reads = 0
        var first: ExecutableBytes? = try Self.bytes(cache, file, contents, version: version, reads: &reads)
        let offset = first?.memoryOffset
        first = nil
        let second = try Self.bytes(cache, file, contents, version: version, reads: &reads)
        #expect(reads == 1)
        #expect(second.memoryOffset == offset)
        #expect(Array(second.raw) == contents)
        #expect(file.usedBytes == 2 * Page.size && cache.cachedBytes == 2 * Page.size)
    }

    @Test func aChangedFileIsReadAgainAndItsOldPagesGo() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        var reads = 0
        _ = try Self.bytes(cache, file, [1, 2, 3], version: Self.version(size: 3, changed: Self.settled), reads: &reads)
        let changed = try Self.bytes(cache, file, [4, 5, 6, 7],
                                     version: Self.version(size: 4, changed: Self.settled + 1), reads: &reads)
        #expect(reads == 2)
        #expect(Array(changed.raw) == [4, 5, 6, 7])
        #expect(cache.cachedBytes == Page.size)
        #expect(file.usedBytes == Page.size)
    }

    @Test func aFileChangedJustNowOrWithoutHostIdentityIsNotKept() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        var reads = 0
        let recent = Self.version(size: 3, changed: FileTime.now().seconds)
        for _ in 0..<2 { _ = try Self.bytes(cache, file, [1, 2, 3], version: recent, reads: &reads) }
        let old = Self.version(size: 3, changed: Self.settled)
        for _ in 0..<2 { _ = try Self.bytes(cache, file, [1, 2, 3], version: old, identity: nil, reads: &reads) }
        #expect(reads == 4)
        #expect(cache.cachedBytes == 0 && file.usedBytes == 0)
    }

    @Test func readOnlySegmentsShareTheCachedPagesAndTheCacheLetsGoOfTheRest() throws {
        let (mm, _) = try makeMM()
        let file = try #require(mm.memoryFile)
        let cache = FileCache()
        // A read-only segment of a page and a half, then a writable one.
        var program = makeELF(segments: [(1, 5, 0, 0x40_0000, 0x1800, 0x1800), (1, 6, 0x2000, 0x40_2000, 0x800, 0x1000)])
        program += (0..<(0x2800 - program.count)).map { UInt8(truncatingIfNeeded: $0) }
        var reads = 0
        let bytes = try Self.bytes(cache, file, program, version: Self.version(size: 0x2800, changed: Self.settled),
                                   reads: &reads)
        _ = try ELFLoader.load(bytes, path: "/bin/prog", argv: ["prog"], envp: [], into: mm,
                               credentials: Credentials(), stackLimit: 8 << 20)
        let cached = try #require(bytes.memoryOffset)
        let text = try #require(mm.privatePageRuns.first { $0.start == 0x40_0000 })
        #expect(text.offset == cached && text.end == 0x40_1000, "the one whole page is the cache's")
        #expect(file.referenceCount(at: cached) == 3, "held by the cache, the exec's bytes and the MM")
        // The half page and the writable segment are copies, past the file's bytes zero as before.
        #expect(try mm.copyIn(from: 0x40_1000, count: 0x1000) == Array(program[0x1000..<0x1800]) + [UInt8](repeating: 0, count: 0x800))
        #expect(try mm.copyIn(from: 0x40_2000, count: 0x1000) == Array(program[0x2000..<0x2800]) + [UInt8](repeating: 0, count: 0x800))

        cache.releaseAll(memoryFile: file)
        #expect(file.referenceCount(at: cached) == 2)
        withExtendedLifetime(bytes) {}
        #expect(try mm.copyIn(from: 0x40_0000, count: 0x1000) == Array(program[0..<0x1000]))
        mm.release()
    }

    @Test func aReadOnlyPrivateMappingOfASettledHostFileSharesTheCachedPagesAWholeWindowAtOnce() throws {
        let host = try HostTree()
        try host.run("head -c 300000 /dev/urandom > \(host.path)/data/lib")
        let contents = try #require(hostFileBytes(host.path + "/data/lib"))
        let (vfs, context) = try host.makeVFS(readOnly: true)
        // Only a file unchanged for longer than the settle time is kept.
        sleep(UInt32(FileCache.settleTime) + 1)
        let file = try #require(try vfs.open("/data/lib", from: context.root, context: context,
                                             flags: LinuxFile.readOnly, mode: 0, umask: 0) as? HostFile)
        var mms: [MemoryManager] = []
        let memoryFile = try MemoryFile.create(capacity: 1 << 30)
        for _ in 0..<2 {
            let mm = MemoryManager(memoryFile: memoryFile)
            let mapper = RecordingMapper()
            _ = mm.acquireAddressSpace { mapper }
            // 74 pages, more than one fault window, inside one allocated window.
            var request = MemoryManager.MappingRequest(address: 0x4000_0000, length: 74 * Page.size, protection: .read,
                                                       shared: false)
            request.fixed = true
            request.backing = .file(file, offset: 0)
            let base = try mm.map(request)
            #expect(mm.handleFault(at: base + 70 * Page.size) == .mapped)
            #expect(mapper.maps.count == 1 && mapper.maps.first?.length == 74 * Page.size, "the whole file in one fault")
            #expect(try mm.copyIn(from: base, count: contents.count) == contents)
            #expect(try mm.copyIn(from: base + UInt64(contents.count), count: 74 * Int(Page.size) - contents.count)
                    == [UInt8](repeating: 0, count: 74 * Int(Page.size) - contents.count))
            mms.append(mm)
        }
        let offset = try #require(mms[0].privatePageRuns.first).offset
        #expect(mms[1].privatePageRuns.first?.offset == offset)
        #expect(memoryFile.referenceCount(at: offset) == 3, "the cache's and both mappings'")
        #expect(memoryFile.usedBytes == 74 * Page.size)
        for mm in mms { mm.release() }
        memoryFile.fileCache.releaseAll(memoryFile: memoryFile)
        #expect(memoryFile.usedBytes == 0)
    }

    // MARK: Reads under way

    /// A read of a settled file into a cache that stays in its fill until
    /// `finish()`: what other threads do meanwhile shows what waits for it.
    final class SlowRead: Sendable {
        private final class State: Sendable {
            let started = Mutex(false), released = Mutex(false), result = Mutex<UInt64?>(nil)
        }
        private let state = State()
        private let thread: HostThread

        init(_ cache: FileCache, _ file: MemoryFile, _ contents: [UInt8], version: FileCache.Version) {
            let state = state
            thread = HostThread {
                let bytes = try? cache.bytes(of: FileCacheTests.identity, at: version, size: contents.count,
                                             memoryFile: file) { buffer in
                    state.started.withLock { $0 = true }
                    while !state.released.withLock({ $0 }) { usleep(1000) }
                    buffer.copyBytes(from: contents)
                }
                state.result.withLock { $0 = bytes.flatMap { Array($0.raw) == contents ? $0.memoryOffset : nil } }
            }
            FileCacheTests.ends(within: 5) { while !state.started.withLock({ $0 }) { usleep(1000) } }
        }

        /// Lets the fill end; the offset of the bytes the reader got (nil if they were not the file's).
        func finish() -> UInt64? {
            state.released.withLock { $0 = true }
            thread.join()
            return state.result.withLock { $0 }
        }
    }

    /// Whether `body`, run on a thread of its own, ends within `seconds`
    /// (it is left to end in its own time otherwise).
    @discardableResult
    static func ends(within seconds: Int, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = Mutex(false)
        _ = HostThread {
            body()
            done.withLock { $0 = true }
        }
        for _ in 0..<(seconds * 1000) {
            if done.withLock({ $0 }) { return true }
            usleep(1000)
        }
        return false
    }

    @Test func aFileBeingReadHoldsUpNobodyWhoWantsAnotherFile() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let version = Self.version(size: 5000, changed: Self.settled)
        let slow = SlowRead(cache, file, [UInt8](repeating: 1, count: 5000), version: version)
        let otherEnded = Self.ends(within: 5) {
            _ = try? cache.bytes(of: FileCache.Identity(device: 8, inode: 43), at: version, size: 5000,
                                 memoryFile: file) { buffer in buffer.copyBytes(from: [UInt8](repeating: 2, count: 5000)) }
        }
        #expect(slow.finish() != nil)
        #expect(otherEnded, "another file's exec waited for this file's read")
        #expect(cache.cachedBytes == 4 * Page.size)
    }

    @Test func twoExecsOfOneFileAtOnceReadItOnceAndShareItsPages() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let contents = [UInt8](repeating: 9, count: 5000)
        let version = Self.version(size: 5000, changed: Self.settled)
        let slow = SlowRead(cache, file, contents, version: version)
        let second = Mutex<(reads: Int, offset: UInt64?)>((0, nil))
        let secondEnded = Self.ends(within: 1) {
            var reads = 0
            let bytes = try? Self.bytes(cache, file, contents, version: version, reads: &reads)
            second.withLock { $0 = (reads, bytes?.memoryOffset) }
        }
        let first = slow.finish()
        #expect(!secondEnded, "the second exec waits for the first one's read")
        #expect(Self.ends(within: 5) { while second.withLock({ $0.offset }) == nil { usleep(1000) } })
        #expect(first != nil && second.withLock { $0.offset } == first)
        #expect(second.withLock { $0.reads } == 0, "read once, by the first")
        #expect(cache.cachedBytes == 2 * Page.size && file.usedBytes == 2 * Page.size)
    }

    @Test func readsUnderWayCountAgainstTheCachesShareOfTheLimit() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        // The cache's share: 4 pages.
        file.limit = 32 * Page.size
        let cache = FileCache()
        let size = 3 * Int(Page.size)
        let version = Self.version(size: Int64(size), changed: Self.settled)
        let slow = SlowRead(cache, file, [UInt8](repeating: 1, count: size), version: version)
        let other = Mutex<(reads: Int, held: UInt64)>((0, 0))
        let otherEnded = Self.ends(within: 5) {
            var reads = 0
            for _ in 0..<2 {
                _ = try? Self.bytes(cache, file, [UInt8](repeating: 2, count: size), version: version,
                                    identity: FileCache.Identity(device: 8, inode: 43), reads: &reads)
            }
            other.withLock { $0 = (reads, cache.cachedBytes) }
        }
        #expect(slow.finish() != nil)
        #expect(otherEnded)
        #expect(other.withLock { $0.reads } == 2, "no room to keep the other file beside the read under way")
        #expect(other.withLock { $0.held } == 3 * Page.size && cache.cachedBytes == 3 * Page.size)
        #expect(file.usedBytes == 3 * Page.size)
    }

    @Test func aCheckpointsReleaseDuringAReadWaitsForNothingAndKeepsNothing() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let contents = [UInt8](repeating: 5, count: 5000)
        let version = Self.version(size: 5000, changed: Self.settled)
        let slow = SlowRead(cache, file, contents, version: version)
        let released = Self.ends(within: 5) { cache.releaseAll(memoryFile: file) }
        #expect(slow.finish() != nil, "the reader has its bytes")
        #expect(released, "the release waited for a read")
        #expect(Self.ends(within: 5) { while cache.cachedBytes != 0 { usleep(1000) } })
        #expect(file.usedBytes == 0)
        var reads = 0
        _ = try Self.bytes(cache, file, contents, version: version, reads: &reads)
        #expect(reads == 1, "read again after the release")
    }
}

/// A host file's bytes, read without the Sentry.
private func hostFileBytes(_ path: String) -> [UInt8]? {
    guard let stream = fopen(path, "rb") else { return nil }
    defer { fclose(stream) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, stream)
        if count <= 0 { break }
        bytes += buffer[..<count]
    }
    return bytes
}

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

    /// A fill that blocks until `release`, marking `started` first.
    static func blockingFill(_ contents: [UInt8], started: borrowing Mutex<Bool>, release: borrowing Mutex<Bool>,
                             _ buffer: UnsafeMutableRawBufferPointer) {
        started.withLock { $0 = true }
        while !release.withLock({ $0 }) { usleep(1000) }
        buffer.copyBytes(from: contents)
    }

    /// Whether `flag` becomes true within `seconds`.
    static func becomes(_ flag: borrowing Mutex<Bool>, within seconds: Int = 5) -> Bool {
        for _ in 0..<(seconds * 1000) {
            if flag.withLock({ $0 }) { return true }
            usleep(1000)
        }
        return false
    }

    @Test func aFileBeingReadHoldsUpNobodyWhoWantsAnotherFile() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let version = Self.version(size: 5000, changed: Self.settled)
        let started = Mutex(false), release = Mutex(false), otherDone = Mutex(false)
        let slow = HostThread {
            _ = try? cache.bytes(of: Self.identity, at: version, size: 5000, memoryFile: file) { buffer in
                Self.blockingFill([UInt8](repeating: 1, count: 5000), started: started, release: release, buffer)
            }
        }
        let fillStarted = Self.becomes(started)
        #expect(fillStarted)
        let other = HostThread {
            _ = try? cache.bytes(of: FileCache.Identity(device: 8, inode: 43), at: version, size: 5000,
                                 memoryFile: file) { buffer in buffer.copyBytes(from: [UInt8](repeating: 2, count: 5000)) }
            otherDone.withLock { $0 = true }
        }
        let doneWhileReading = Self.becomes(otherDone)
        release.withLock { $0 = true }
        slow.join()
        other.join()
        #expect(doneWhileReading, "another file's exec waited for this file's read")
        #expect(cache.cachedBytes == 4 * Page.size)
    }

    @Test func twoExecsOfOneFileAtOnceReadItOnceAndShareItsPages() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let contents = [UInt8](repeating: 9, count: 5000)
        let version = Self.version(size: 5000, changed: Self.settled)
        let started = Mutex(false), release = Mutex(false), secondDone = Mutex(false)
        let reads = Mutex(0), offsets = Mutex<[UInt64?]>([])
        let first = HostThread {
            let bytes = try? cache.bytes(of: Self.identity, at: version, size: 5000, memoryFile: file) { buffer in
                reads.withLock { $0 += 1 }
                Self.blockingFill(contents, started: started, release: release, buffer)
            }
            offsets.withLock { $0.append(bytes?.memoryOffset) }
        }
        let fillStarted = Self.becomes(started)
        #expect(fillStarted)
        let second = HostThread {
            let bytes = try? cache.bytes(of: Self.identity, at: version, size: 5000, memoryFile: file) { buffer in
                reads.withLock { $0 += 1 }
                buffer.copyBytes(from: contents)
            }
            #expect(bytes.map { Array($0.raw) } == contents)
            offsets.withLock { $0.append(bytes?.memoryOffset) }
            secondDone.withLock { $0 = true }
        }
        let secondDoneWhileReading = Self.becomes(secondDone, within: 1)
        release.withLock { $0 = true }
        first.join()
        second.join()
        #expect(!secondDoneWhileReading, "the second exec waits for the first one's read")
        #expect(reads.withLock { $0 } == 1)
        let seen = offsets.withLock { $0 }
        #expect(seen.count == 2 && seen[0] != nil && seen[0] == seen[1])
        #expect(cache.cachedBytes == 2 * Page.size && file.usedBytes == 2 * Page.size)
    }

    @Test func readsUnderWayCountAgainstTheCachesShareOfTheLimit() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        // The cache's share: 4 pages.
        file.limit = 32 * Page.size
        let cache = FileCache()
        let size = 3 * Int(Page.size)
        let version = Self.version(size: Int64(size), changed: Self.settled)
        let started = Mutex(false), release = Mutex(false), otherDone = Mutex(false)
        let slow = HostThread {
            _ = try? cache.bytes(of: Self.identity, at: version, size: size, memoryFile: file) { buffer in
                Self.blockingFill([UInt8](repeating: 1, count: size), started: started, release: release, buffer)
            }
        }
        let fillStarted = Self.becomes(started)
        #expect(fillStarted)
        let otherReads = Mutex(0), heldMeanwhile = Mutex<UInt64>(0)
        let other = HostThread {
            for _ in 0..<2 {
                _ = try? cache.bytes(of: FileCache.Identity(device: 8, inode: 43), at: version, size: size,
                                     memoryFile: file) { buffer in
                    otherReads.withLock { $0 += 1 }
                    buffer.copyBytes(from: [UInt8](repeating: 2, count: size))
                }
            }
            heldMeanwhile.withLock { $0 = cache.cachedBytes }
            otherDone.withLock { $0 = true }
        }
        let doneWhileReading = Self.becomes(otherDone)
        release.withLock { $0 = true }
        slow.join()
        other.join()
        #expect(doneWhileReading)
        #expect(otherReads.withLock { $0 } == 2, "no room to keep the other file beside the read under way")
        #expect(heldMeanwhile.withLock { $0 } == 3 * Page.size && cache.cachedBytes == 3 * Page.size)
        #expect(file.usedBytes == 3 * Page.size)
    }

    @Test func aCheckpointsReleaseDuringAReadWaitsForNothingAndKeepsNothing() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let cache = FileCache()
        let contents = [UInt8](repeating: 5, count: 5000)
        let version = Self.version(size: 5000, changed: Self.settled)
        let started = Mutex(false), release = Mutex(false), released = Mutex(false), intact = Mutex(false)
        let slow = HostThread {
            let bytes = try? cache.bytes(of: Self.identity, at: version, size: 5000, memoryFile: file) { buffer in
                Self.blockingFill(contents, started: started, release: release, buffer)
            }
            intact.withLock { $0 = bytes.map { Array($0.raw) } == contents }
        }
        let fillStarted = Self.becomes(started)
        #expect(fillStarted)
        let releaser = HostThread {
            cache.releaseAll(memoryFile: file)
            released.withLock { $0 = true }
        }
        let releasedWhileReading = Self.becomes(released)
        release.withLock { $0 = true }
        slow.join()
        releaser.join()
        #expect(releasedWhileReading, "the release waited for a read")
        #expect(intact.withLock { $0 }, "the reader has its bytes")
        #expect(cache.cachedBytes == 0 && file.usedBytes == 0)
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

import Glibc
import State
import Testing
@testable import Sentry

@Suite struct MemoryFileAllocator {
    @Test func allocationsAreDisjointZeroedAndReusedAfterFree() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        let a = try file.allocate(3 * Page.size)
        let b = try file.allocate(Page.size)
        #expect(a != b)
        #expect(b >= a + 3 * Page.size || b + Page.size <= a)
        let pointer = try #require(file.pointer(at: a, count: 3 * Page.size))
        pointer.storeBytes(of: 0xdead_beef, as: UInt32.self)
        file.free(offset: a, length: 3 * Page.size)
        #expect(file.usedBytes == Page.size)
        let c = try file.allocate(2 * Page.size)
        #expect(c == a)
        let reused = try #require(file.pointer(at: c, count: 2 * Page.size))
        #expect(reused.load(as: UInt32.self) == 0)
    }

    /// Freed pages are kept with their contents (up to a quarter of the
    /// limit here) or punched past that; either way they are out of the
    /// used ranges a checkpoint saves, and read zero when allocated again.
    @Test func freedPagesAreKeptOrPunchedAndReadZeroWhenTakenAgain() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        file.limit = 16 * Page.size
        let kept = try file.allocate(2 * Page.size)
        let punched = try file.allocate(8 * Page.size)
        for (offset, pages) in [(kept, 2), (punched, 8)] {
            let pointer = try #require(file.pointer(at: offset, count: UInt64(pages) * Page.size))
            pointer.initializeMemory(as: UInt8.self, repeating: 0xa5, count: pages * Int(Page.size))
        }
        file.free(offset: kept, length: 2 * Page.size)
        #expect(file.recycledBytes == 2 * Page.size, "kept: within a quarter of the limit")
        file.free(offset: punched, length: 8 * Page.size)
        #expect(file.recycledBytes == 2 * Page.size, "punched: past a quarter of the limit")
        #expect(file.usedBytes == 0)
        #expect(file.usedRanges.isEmpty, "neither is saved")
        let again = try file.allocate(10 * Page.size)
        #expect(again == kept)
        #expect(file.recycledBytes == 0, "taken again")
        let pointer = try #require(file.pointer(at: again, count: 10 * Page.size))
        #expect(UnsafeRawBufferPointer(start: pointer, count: 10 * Int(Page.size)).allSatisfy { $0 == 0 })
    }

    @Test func exhaustionIsENOMEMAndBadLengthsAreEINVAL() throws {
        let file = try MemoryFile.create(capacity: 4 * Page.size)
        _ = try file.allocate(4 * Page.size)
        #expect(throws: SyscallError.enomem) { try file.allocate(Page.size) }
        #expect(throws: SyscallError.einval) { try file.allocate(100) }
        #expect(throws: SyscallError.einval) { try file.allocate(0) }
    }

    @Test func theLimitCountsWhatIsAllocatedAndFreedExactly() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        file.limit = 4 * Page.size
        let a = try file.allocate(3 * Page.size)
        #expect(throws: SyscallError.enomem) { try file.allocate(2 * Page.size) }
        #expect(file.takeChargeFailure(), "a refusal by the limit is noted")
        _ = try file.allocate(Page.size)
        // Freeing more than was allocated, or twice, gives back only what was there.
        file.free(offset: a, length: 8 * Page.size)
        file.free(offset: a, length: 3 * Page.size)
        #expect(file.usedBytes == 0)
        _ = try file.allocate(4 * Page.size)
        #expect(!file.takeChargeFailure())
        file.limit = .max
        #expect(throws: SyscallError.enomem) { try file.allocate(1 << 24) }
        #expect(!file.takeChargeFailure(), "running out of capacity is not the limit")
    }

    @Test func usedRangesSurviveSaveAndLoad() throws {
        let file = try MemoryFile.create(capacity: 1 << 24)
        _ = try file.allocate(2 * Page.size)
        let hole = try file.allocate(Page.size)
        _ = try file.allocate(Page.size)
        file.free(offset: hole, length: Page.size)
        var registry = StateRegistry()
        registry.register(MemoryFile.self)
        let bytes = try StateEncoder.encode(root: file, registry: registry)
        let loaded = try StateDecoder(registry: registry).decode(bytes, as: MemoryFile.self)
        #expect(loaded.usedRanges == file.usedRanges)
        #expect(loaded.fd >= 0)
    }
}

/// A restored MemoryFile whose pages still load in the background: every
/// access waits for its range, and a free never lets old contents come back.
@Suite struct MemoryFileBackgroundLoad {
    @Test func accessesWaitForTheirRangeAndFreedPagesStayZero() throws {
        let pages: UInt64 = 64
        let original = try MemoryFile.create(capacity: 1 << 24)
        let offset = try original.allocate(pages * Page.size)
        let source = try #require(original.pointer(at: offset, count: pages * Page.size))
        for page in 0..<Int(pages) {
            (source + page * Int(Page.size)).initializeMemory(as: UInt8.self, repeating: UInt8(page + 1),
                                                              count: Int(Page.size))
        }
        let image = "/tmp/runsc-memoryfile-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { removeTree(image) }
        let writer = try ImageWriter(directory: image, info: ImageInfo(runtimeVersion: "test", containerIDs: ["c"]),
                                     chunkSize: Int(8 * Page.size))
        try writer.writeState([0])
        try writer.writePages(memory: UnsafeRawBufferPointer(start: original.base, count: Int(original.capacity)),
                              ranges: original.usedRanges)
        try writer.commit()

        let restored = try MemoryFile.create(capacity: 1 << 24)
        #expect(try restored.allocate(pages * Page.size) == offset)
        let base = try #require(restored.base)
        let loader = try ImageReader(directory: image).pagesLoader(
            into: UnsafeMutableRawBufferPointer(start: base, count: Int(restored.capacity))) { _ in }
        restored.beginLoading(loader)  // not started: only accesses load

        let fifth = try #require(restored.pointer(at: offset + 5 * Page.size, count: 10))
        #expect(fifth.load(as: UInt8.self) == 6)
        restored.free(offset: offset + 16 * Page.size, length: 16 * Page.size)
        try loader.finishLoading()
        let again = try restored.allocate(16 * Page.size)
        #expect(again == offset + 16 * Page.size)
        let reused = try #require(restored.pointer(at: again, count: 16 * Page.size))
        #expect(UnsafeRawBufferPointer(start: reused, count: Int(16 * Page.size)).allSatisfy { $0 == 0 })
        let last = try #require(restored.pointer(at: offset + (pages - 1) * Page.size, count: Page.size))
        #expect(last.load(as: UInt8.self) == UInt8(pages))
    }
}

private func removeTree(_ path: String) {
    guard let directory = opendir(path) else { return }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { unlink(path + "/" + name) }
    }
    closedir(directory)
    rmdir(path)
}

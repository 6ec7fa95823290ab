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
        let pointer = try #require(file.pointer(at: a))
        pointer.storeBytes(of: 0xdead_beef, as: UInt32.self)
        file.free(offset: a, length: 3 * Page.size)
        #expect(file.usedBytes == Page.size)
        let c = try file.allocate(2 * Page.size)
        #expect(c == a)
        let reused = try #require(file.pointer(at: c))
        #expect(reused.load(as: UInt32.self) == 0)
    }

    @Test func exhaustionIsENOMEMAndBadLengthsAreEINVAL() throws {
        let file = try MemoryFile.create(capacity: 4 * Page.size)
        _ = try file.allocate(4 * Page.size)
        #expect(throws: SyscallError.enomem) { try file.allocate(Page.size) }
        #expect(throws: SyscallError.einval) { try file.allocate(100) }
        #expect(throws: SyscallError.einval) { try file.allocate(0) }
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

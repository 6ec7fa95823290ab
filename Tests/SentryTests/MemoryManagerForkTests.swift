import Testing
@testable import Sentry

/// fork's MM: the child sees the parent's memory as it was at the fork;
/// afterwards private writes stay on their side and shared ones are seen by both.
@Suite struct MemoryManagerFork {
    @Test func privatePagesAreTheChildsOwnAndSharedPagesAreShared() throws {
        let (parent, _) = try makeMM()
        let privateBase = try parent.map(anonymous(0x3000))
        var sharedRequest = anonymous(0x2000)
        sharedRequest.shared = true
        let sharedBase = try parent.map(sharedRequest)
        try parent.copyOut([UInt8](repeating: 7, count: 0x3000), to: privateBase)
        try parent.copyOut([UInt8](repeating: 1, count: 16), to: sharedBase)

        let child = try parent.fork()
        #expect(child.mappings.map(\.range) == parent.mappings.map(\.range))
        #expect(try child.copyIn(from: privateBase, count: 0x3000) == [UInt8](repeating: 7, count: 0x3000))

        try child.copyOut([9, 9], to: privateBase + 0x1000)
        try parent.copyOut([5], to: privateBase)
        #expect(try parent.copyIn(from: privateBase + 0x1000, count: 2) == [7, 7])
        #expect(try child.copyIn(from: privateBase, count: 1) == [7])

        try child.copyOut([2], to: sharedBase)
        #expect(try parent.copyIn(from: sharedBase, count: 1) == [2])

        // The parent's exit leaves the shared region to the child.
        parent.release()
        #expect(try child.copyIn(from: sharedBase, count: 2) == [2, 1])
        child.release()
    }

    @Test func aForkThatCannotGetMemoryLeavesNothingAllocated() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x4000))
        try parent.copyOut([UInt8](repeating: 3, count: 0x4000), to: base)
        let file = try #require(parent.memoryFile)
        let before = file.usedBytes
        file.limit = before + 0x1000
        #expect(throws: SyscallError.enomem) { _ = try parent.fork() }
        #expect(file.usedBytes == before)
        _ = file.takeChargeFailure()
    }
}

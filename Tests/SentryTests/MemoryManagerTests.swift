import Testing
@testable import Sentry

/// Records what the MM asks of the stub, instead of a real stub process.
final class RecordingMapper: AddressSpaceMapper, @unchecked Sendable {
    var maps: [(address: UInt64, length: UInt64, offset: UInt64, protection: Protection)] = []
    var unmaps: [(UInt64, UInt64)] = []
    var protects: [(UInt64, UInt64, Protection)] = []
    var releases = 0
    var unmapAlls = 0

    func map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection) throws(SyscallError) {
        maps.append((address, length, fileOffset, protection))
    }

    func unmap(address: UInt64, length: UInt64) throws(SyscallError) {
        unmaps.append((address, length))
    }

    func protect(address: UInt64, length: UInt64, protection: Protection) throws(SyscallError) {
        protects.append((address, length, protection))
    }

    func unmapAll() throws(SyscallError) {
        unmapAlls += 1
    }

    func release() {
        releases += 1
    }
}

func makeMM() throws -> (MemoryManager, RecordingMapper) {
    let mm = MemoryManager(memoryFile: try MemoryFile.create(capacity: 1 << 30))
    let mapper = RecordingMapper()
    _ = mm.acquireAddressSpace { mapper }
    return (mm, mapper)
}

func anonymous(_ length: UInt64, at address: UInt64 = 0, fixed: Bool = false,
               protection: Protection = [.read, .write]) -> MemoryManager.MappingRequest {
    var request = MemoryManager.MappingRequest(address: address, length: length, protection: protection, shared: false)
    request.fixed = fixed
    return request
}

/// A stub new to an MM gets the windows its first instructions will touch mapped before it runs.
@Suite struct PrefaultTests {
    @Test func prefaultMapsWhatTheStubLacksAndLeavesTheRest() throws {
        let (mm, stub) = try makeMM()
        let code = try mm.map(anonymous(0x1000, at: 0x1000_0000, fixed: true, protection: [.read, .execute]))
        let stack = try mm.map(anonymous(0x10000, at: 0x2000_0000, fixed: true))
        mm.prefault([code, stack + 0xff8, 0x3000_0000])
        #expect(stub.maps.map(\.address) == [code, stack])
        #expect(stub.maps.map(\.protection) == [[.read, .execute], [.read, .write]])
        // Already mapped: no second mapping, and no write fault taken for it.
        stub.maps = []
        mm.prefault([code, stack])
        #expect(stub.maps.isEmpty)
        #expect(stub.protects.isEmpty)
        #expect(mm.handleFault(at: code) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR))
        mm.release()
    }
}

/// Faults cost a stop and a call each: what a program is about to touch
/// comes in with the request that maps a new stub, or with the call that grows it.
@Suite struct StartupMappingTests {
    @Test func aForkChildsFirstFaultInASmallWritableMappingCopiesAllOfIt() throws {
        let (parent, _) = try makeMM()
        let small = try parent.map(anonymous(4 * Page.size, at: 0x1000_0000, fixed: true))
        let large = try parent.map(anonymous(128 * Page.size, at: 0x2000_0000, fixed: true))
        try parent.copyOut([UInt8](repeating: 1, count: Int(4 * Page.size)), to: small)
        try parent.copyOut([UInt8](repeating: 2, count: Int(128 * Page.size)), to: large)
        let child = try parent.fork()
        let stub = RecordingMapper()
        _ = child.acquireAddressSpace { stub }
        #expect(child.handleFault(at: small + Page.size) == .mapped)
        // All of it comes in writable: the child's own copy, no write fault to come.
        #expect(stub.maps.map(\.address) == [small])
        #expect(stub.maps.map(\.length) == [4 * Page.size])
        #expect(stub.maps.map(\.protection) == [[.read, .write]])
        // A large one comes in a window, still shared and without write.
        stub.maps = []
        #expect(child.handleFault(at: large + Page.size) == .mapped)
        #expect(stub.maps.allSatisfy { $0.protection == [.read] })
        // Copies, not the parent's pages: each side sees only its own writes.
        try child.copyOut([9], to: small)
        #expect(try parent.copyIn(from: small, count: 1) == [1])
        #expect(try child.copyIn(from: small + Page.size, count: 1) == [1])
        child.release()
        parent.release()
    }

    @Test func anExecsFirstRunMapsItsSegmentsAndBrkMapsTheHeapItAdds() throws {
        let (mm, stub) = try makeMM()
        let header = try mm.map(anonymous(Page.size, at: 0x40_0000, fixed: true, protection: [.read]))
        let text = try mm.map(anonymous(16 * Page.size, at: 0x40_1000, fixed: true, protection: [.read, .execute]))
        let data = try mm.map(anonymous(2 * Page.size, at: 0x80_0000, fixed: true))
        let stack = try mm.map(anonymous(16 * Page.size, at: 0x7000_0000, fixed: true))
        mm.setLayout(brkStart: 0x90_0000, stackTop: stack + 16 * Page.size, mmapBase: 0x7f00_0000_0000,
                     argv: 0..<0, env: 0..<0, auxv: [], executablePath: "/x", startupAddresses: [header, text, data])
        mm.prefaultNewStub(instruction: text + 0x40, stack: stack + 15 * Page.size, threadPointer: 0)
        #expect(Set(stub.maps.map(\.address)) == [header, text, data, stack])
        #expect(mm.handleFault(at: data) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR),
                "data is mapped writable already: a fault there is no write fault")
        // The hint is for the first run only.
        stub.maps = []
        mm.prefaultNewStub(instruction: text + 0x40, stack: stack + 15 * Page.size, threadPointer: 0)
        #expect(stub.maps.isEmpty)
        #expect(mm.setBreak(0) == 0x90_0000)
        #expect(mm.setBreak(0x90_0000 + 3 * Page.size) == 0x90_0000 + 3 * Page.size)
        #expect(stub.maps.map(\.address) == [0x90_0000])
        #expect(stub.maps.map(\.length) == [3 * Page.size])
        mm.release()
    }
}

/// The MM owns its address space: created by the first task that runs in
/// it, shared by the next ones, ended when the last one leaves.
@Suite struct AddressSpaceOwnership {
    @Test func execHandsItsLastUsersStubToTheNewMMEmptiedOnce() throws {
        let (old, stub) = try makeMM()
        let (taken, other) = try makeMM()
        #expect(!old.handOverAddressSpace(to: taken), "an MM with an address space keeps its own")
        #expect(stub.unmapAlls == 0)
        let next = MemoryManager(memoryFile: try MemoryFile.create(capacity: 1 << 20))
        #expect(old.handOverAddressSpace(to: next))
        #expect(stub.unmapAlls == 1)
        #expect(stub.unmaps.isEmpty)
        #expect(next.acquireAddressSpace { RecordingMapper() } === stub)
        #expect(old.acquireAddressSpace { RecordingMapper() } !== stub, "the old MM gave it away")
        next.releaseAddressSpace()
        next.releaseAddressSpace()
        #expect(stub.releases == 1)
        #expect(other.releases == 0)
        old.release(); taken.release(); next.release()
    }

    @Test func theLastUserEndsTheAddressSpaceAndTheNextUserMakesANewOne() throws {
        let (mm, first) = try makeMM()
        let joined = mm.acquireAddressSpace { RecordingMapper() }
        #expect(joined === first)
        mm.releaseAddressSpace()
        #expect(first.releases == 0)
        mm.releaseAddressSpace()
        #expect(first.releases == 1)
        let second = RecordingMapper()
        let made = mm.acquireAddressSpace { second }
        #expect(made === second)
        mm.releaseAddressSpace()
        #expect(second.releases == 1 && first.releases == 1)
    }
}

@Suite struct VMAOperations {
    @Test func mappingsGoTopDownBelowTheMmapBaseAndMergeWhenAdjacent() throws {
        let (mm, _) = try makeMM()
        let first = try mm.map(anonymous(0x4000))
        let second = try mm.map(anonymous(0x2000))
        #expect(first == mm.mmapBase - 0x4000)
        #expect(second == first - 0x2000)
        #expect(mm.mappings.count == 1)
        #expect(mm.mappings[0].range == second..<first + 0x4000)
    }

    @Test func unmappingTheMiddleSplitsAVMA() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x10000, at: 0x1000_0000, fixed: true))
        try mm.unmap(address: base + 0x4000, length: 0x2000)
        #expect(mm.mappings.map(\.range) == [base..<base + 0x4000, base + 0x6000..<base + 0x10000])
    }

    @Test func mprotectSplitsAndMergesBack() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x10000, at: 0x1000_0000, fixed: true))
        try mm.protect(address: base + 0x1000, length: 0x1000, protection: .read)
        #expect(mm.mappings.count == 3)
        #expect(mm.mappings[1].protection == .read)
        try mm.protect(address: base + 0x1000, length: 0x1000, protection: [.read, .write])
        #expect(mm.mappings.count == 1)
        #expect(throws: SyscallError.enomem) {
            try mm.protect(address: base + 0xf000, length: 0x2000, protection: .read)
        }
    }

    @Test func fixedNoReplaceRefusesAnOccupiedRange() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x2000, at: 0x2000_0000, fixed: true))
        var request = anonymous(0x1000, at: base)
        request.fixedNoReplace = true
        #expect(throws: SyscallError.eexist) { try mm.map(request) }
    }

    @Test func faultsMapAWindowAndSecondFaultOnAMappedPageIsAProtectionError() throws {
        let (mm, mapper) = try makeMM()
        let base = try mm.map(anonymous(1 << 20, at: 0x3000_0000, fixed: true, protection: .read))
        #expect(mm.handleFault(at: base + 0x1234) == .mapped)
        #expect(mapper.maps.count == 1)
        #expect(mapper.maps[0].address == base)
        #expect(mapper.maps[0].length == MemoryManager.faultWindow)
        #expect(mapper.maps[0].protection == .read)
        #expect(mm.handleFault(at: base + 0x1234) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR))
        #expect(mm.handleFault(at: 0x10) == .segmentationFault(code: LinuxSignal.SEGV_MAPERR))
    }

    @Test func copyOutThenCopyInRoundTripsAcrossVMAs() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x2000, at: 0x4000_0000, fixed: true))
        _ = try mm.map(anonymous(0x2000, at: base + 0x2000, fixed: true, protection: [.read, .write, .execute]))
        let bytes = (0..<0x3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try mm.copyOut(bytes, to: base + 0x800)
        #expect(try mm.copyIn(from: base + 0x800, count: 0x3000) == bytes)
    }

    @Test func copiesCheckProtectionsAndHoles() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x1000, at: 0x5000_0000, fixed: true, protection: .read))
        #expect(throws: SyscallError.efault) {
            try mm.copyOut([UInt8](repeating: 1, count: 8), to: base)
        }
        #expect(try mm.copyIn(from: base, count: 16) == [UInt8](repeating: 0, count: 16))
        #expect(throws: SyscallError.efault) { try mm.copyIn(from: base + 0xff8, count: 16) }
        #expect(throws: SyscallError.efault) { try mm.copyIn(from: UInt64.max - 4, count: 16) }
    }

    @Test func stringsStopAtNULAndAreBoundedByMaxLength() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x1000, at: 0x6000_0000, fixed: true))
        let text = Array("/bin/sh".utf8) + [0]
        try mm.copyOut(text, to: base + 0xff0)
        #expect(try mm.copyInString(from: base + 0xff0, maxLength: 4096) == "/bin/sh")
        #expect(throws: SyscallError.enametoolong) { try mm.copyInString(from: base + 0xff0, maxLength: 3) }
        let unterminated = [UInt8](repeating: 0x41, count: 8)
        try mm.copyOut(unterminated, to: base + 0xff8)
        #expect(throws: SyscallError.efault) { try mm.copyInString(from: base + 0xff8, maxLength: 4096) }
    }

    @Test func brkGrowsShrinksAndRefusesToGoBelowItsStart() throws {
        let (mm, _) = try makeMM()
        mm.setLayout(brkStart: 0x60_0000, stackTop: 0x7fff_0000_0000, mmapBase: 0x7f00_0000_0000,
                     argv: 0..<0, env: 0..<0, auxv: [], executablePath: "/x")
        #expect(mm.setBreak(0) == 0x60_0000)
        #expect(mm.setBreak(0x60_1234) == 0x60_1234)
        #expect(mm.mappings.last?.range == 0x60_0000..<0x60_2000)
        #expect(mm.mappings.last?.name == "[heap]")
        #expect(mm.setBreak(0x70_0000) == 0x70_0000)
        #expect(mm.setBreak(0x60_0000) == 0x60_0000)
        #expect(mm.mappings.isEmpty)
        #expect(mm.setBreak(0x50_0000) == 0x60_0000)
    }

    @Test func freedPagesReadBackAsZeroAfterDontNeed() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x2000, at: 0x7000_0000, fixed: true))
        try mm.copyOut([UInt8](repeating: 9, count: 0x2000), to: base)
        let used = mm.memoryFile?.usedBytes ?? 0
        try mm.dropPages(address: base, length: 0x1000)
        #expect((mm.memoryFile?.usedBytes ?? 0) == used - 0x1000)
        #expect(try mm.copyIn(from: base, count: 4) == [0, 0, 0, 0])
        #expect(try mm.copyIn(from: base + 0x1000, count: 4) == [9, 9, 9, 9])
    }

    @Test func mremapMovesPagesWithoutCopying() throws {
        let (mm, mapper) = try makeMM()
        let base = try mm.map(anonymous(0x2000, at: 0x8000_0000, fixed: true))
        _ = try mm.map(anonymous(0x1000, at: base + 0x2000, fixed: true, protection: .read))
        try mm.copyOut([UInt8](repeating: 5, count: 0x2000), to: base)
        let used = mm.memoryFile?.usedBytes ?? 0
        #expect(throws: SyscallError.enomem) {
            try mm.remap(oldAddress: base, oldLength: 0x2000, newLength: 0x4000, flags: [], newAddress: 0)
        }
        let moved = try mm.remap(oldAddress: base, oldLength: 0x2000, newLength: 0x4000, flags: .mayMove,
                                 newAddress: 0)
        #expect(moved != base)
        #expect(try mm.copyIn(from: moved + 0x1ffc, count: 8) == [5, 5, 5, 5, 0, 0, 0, 0])
        #expect(mm.memoryFile?.usedBytes == used + 0x1000 || mm.memoryFile?.usedBytes == used + 0x2000)
        #expect(throws: SyscallError.efault) { try mm.copyIn(from: base, count: 1) }
        _ = mapper
    }
}

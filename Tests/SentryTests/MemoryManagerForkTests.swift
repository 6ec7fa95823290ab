import Platform
import State
import Synchronization
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

    @Test func aLargeForkMovesTheParentToAFreshStubInsteadOfProtectingEveryPage() throws {
        let (parent, stub) = try makeMM()
        let length = MemoryManager.freshStubThreshold
        let base = try parent.map(anonymous(length, at: 0x4000_0000, fixed: true))
        for window in stride(from: base, to: base + length, by: Int(MemoryManager.faultWindow)) {
            #expect(parent.handleFault(at: window) == .mapped)
        }
        try parent.copyOut([4], to: base)
        let fresh = RecordingMapper()
        var retired: (any AddressSpaceMapper)?
        let child = try parent.fork { previous throws(SyscallError) in
            retired = previous
            return fresh
        }
        #expect(retired === stub)
        #expect(stub.protects.isEmpty)
        // Nothing is mapped in the fresh stub: the parent's pages fault in
        // again, without write while the child shares them.
        #expect(parent.handleFault(at: base + 8) == .mapped)
        #expect(fresh.maps.map(\.protection) == [.read])
        #expect(fresh.maps.first?.length == MemoryManager.allocatedFaultWindow, "allocated pages come back a wide window at a time")
        #expect(parent.handleFault(at: base + 8) == .mapped)
        try parent.copyOut([5], to: base)
        #expect(try child.copyIn(from: base, count: 1) == [4])
        child.release()
        parent.release()
    }

    /// A second thread runs in the stub (another task acquired it): a large
    /// fork keeps the stub, which the other thread's stub thread is part of,
    /// and takes write from its pages instead.
    @Test func aLargeForkWithASecondThreadInTheStubProtectsInsteadOfMoving() throws {
        let (parent, stub) = try makeMM()
        _ = parent.acquireAddressSpace { RecordingMapper() }
        let length = MemoryManager.freshStubThreshold
        let base = try parent.map(anonymous(length, at: 0x4000_0000, fixed: true))
        for window in stride(from: base, to: base + length, by: Int(MemoryManager.faultWindow)) {
            #expect(parent.handleFault(at: window) == .mapped)
        }
        var replaced = false
        let child = try parent.fork { _ throws(SyscallError) in
            replaced = true
            return RecordingMapper()
        }
        #expect(!replaced)
        #expect(!stub.protects.isEmpty)
        #expect(stub.protects.allSatisfy { $0.2 == [.read] })
        child.release()
        parent.releaseAddressSpace()
        parent.release()
    }

    @Test func aSmallForkTakesWriteFromTheStubAndKeepsIt() throws {
        let (parent, stub) = try makeMM()
        let base = try parent.map(anonymous(MemoryManager.faultWindow, at: 0x4800_0000, fixed: true))
        #expect(parent.handleFault(at: base) == .mapped)
        var replaced = false
        let child = try parent.fork { _ throws(SyscallError) in
            replaced = true
            return RecordingMapper()
        }
        #expect(!replaced)
        #expect(stub.protects.map(\.2) == [.read])
        child.release()
        parent.release()
    }

    @Test func aForkSharesPagesInsteadOfCopyingAndChargesNothing() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x40_0000))
        try parent.copyOut([UInt8](repeating: 3, count: 0x40_0000), to: base)
        let file = try #require(parent.memoryFile)
        let before = file.usedBytes
        file.limit = before
        let child = try parent.fork()
        #expect(file.usedBytes == before)
        #expect(!file.takeChargeFailure())
        #expect(child.privatePageRuns == parent.privatePageRuns)
        let offset = try #require(parent.privatePageRuns.first).offset
        #expect(file.referenceCount(at: offset) == 2)
        // Reading never copies.
        #expect(try child.copyIn(from: base + 0x1234, count: 4) == [3, 3, 3, 3])
        #expect(file.usedBytes == before)
        file.limit = .max
        child.release()
        parent.release()
        #expect(file.usedBytes == 0)
    }

    @Test func aWriteCopiesOnlyWhatItTouchesAndTheOtherSideKeepsThePage() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x10000))
        try parent.copyOut([UInt8](repeating: 4, count: 0x10000), to: base)
        let file = try #require(parent.memoryFile)
        let before = file.usedBytes
        let child = try parent.fork()
        try child.copyOut([8], to: base + 0x5000)
        #expect(file.usedBytes == before + Page.size)
        #expect(try parent.copyIn(from: base + 0x5000, count: 1) == [4])
        #expect(try child.copyIn(from: base + 0x4fff, count: 3) == [4, 8, 4])
        // The parent's page now has one owner: writing it copies nothing.
        try parent.copyOut([6], to: base + 0x5000)
        #expect(file.usedBytes == before + Page.size)
        #expect(try child.copyIn(from: base + 0x5000, count: 1) == [8])
        child.release()
        #expect(file.usedBytes == before)
        #expect(try parent.copyIn(from: base + 0x4fff, count: 3) == [4, 6, 4])
        parent.release()
    }

    @Test func theParentsStubStopsWritingItsPrivatePagesAndAWriteFaultCopies() throws {
        let (parent, stub) = try makeMM()
        let base = try parent.map(anonymous(0x20_0000, at: 0x1000_0000, fixed: true))
        let readOnly = try parent.map(anonymous(0x1000, at: base + 0x20_0000, fixed: true, protection: .read))
        #expect(parent.handleFault(at: base) == .mapped)
        #expect(parent.handleFault(at: readOnly) == .mapped)
        try parent.copyOut([UInt8](repeating: 1, count: 16), to: base)
        #expect(stub.protects.isEmpty)

        let child = try parent.fork()
        // One mprotect over what the stub maps writable, none for the read-only page.
        #expect(stub.protects.count == 1)
        #expect(stub.protects.first?.0 == base)
        #expect(stub.protects.first?.1 == MemoryManager.faultWindow)
        #expect(stub.protects.first?.2 == .read)

        // A second fault on the mapped page is the write: it copies that page.
        let file = try #require(parent.memoryFile)
        let before = file.usedBytes
        stub.maps = []
        #expect(parent.handleFault(at: base + 8) == .mapped)
        #expect(file.usedBytes == before + Page.size)
        #expect(stub.maps.count == 1)
        #expect(stub.maps.first?.protection == [.read, .write])
        let copied = try #require(parent.privatePageRuns.first { $0.start == base })
        #expect(stub.maps.first?.offset == copied.offset)
        #expect(copied.offset != child.privatePageRuns.first { $0.start == base }?.offset)
        // Now it is really writable: another fault there is a violation.
        #expect(parent.handleFault(at: base + 8) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR))
        // The read-only page stays a violation.
        #expect(parent.handleFault(at: readOnly) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR))
        try parent.copyOut([2], to: base)
        #expect(try child.copyIn(from: base, count: 2) == [1, 1])
        // A write on the next page continues in address order: the rest of the window is copied at once.
        #expect(parent.handleFault(at: base + Page.size) == .mapped)
        #expect(file.usedBytes == before + MemoryManager.faultWindow)
        #expect(parent.handleFault(at: base + MemoryManager.faultWindow - 1) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR))
        child.release()
        parent.release()
    }

    @Test func theChildMapsSharedPagesReadOnlyAndUpgradesWhenItIsTheLastOwner() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x10_0000, at: 0x2000_0000, fixed: true))
        try parent.copyOut([UInt8](repeating: 1, count: 0x10_0000), to: base)
        let child = try parent.fork()
        let childStub = RecordingMapper()
        _ = child.acquireAddressSpace { childStub }

        #expect(child.handleFault(at: base) == .mapped)
        #expect(childStub.maps.map(\.protection) == [.read])
        // Pages the child populates itself, past what the parent touched, are its own.
        let file = try #require(parent.memoryFile)
        parent.release()
        // The parent is gone: the write fault copies nothing and only upgrades.
        let before = file.usedBytes
        #expect(child.handleFault(at: base + 0x10) == .mapped)
        #expect(file.usedBytes == before)
        #expect(childStub.protects.map(\.2) == [[.read, .write]])
        #expect(childStub.protects.first?.0 == base)
        // The fault mapped all the pages the parent had populated (one run), so all become writable.
        #expect(childStub.protects.first?.1 == 0x10_0000)
        child.release()
        #expect(file.usedBytes == 0)
    }

    @Test func onceTheOtherSideIsGoneOneWriteFaultMakesTheWholeMappingWritable() throws {
        let (parent, stub) = try makeMM()
        let length = 4 * MemoryManager.faultWindow
        let base = try parent.map(anonymous(length, at: 0x2400_0000, fixed: true))
        for window in stride(from: base, to: base + length, by: Int(MemoryManager.faultWindow)) {
            #expect(parent.handleFault(at: window) == .mapped)
        }
        let child = try parent.fork()
        child.release()
        stub.protects = []
        #expect(parent.handleFault(at: base + length - 8) == .mapped)
        #expect(stub.protects.count == 1)
        #expect(stub.protects.first?.0 == base)
        #expect(stub.protects.first?.1 == length)
        #expect(stub.protects.first?.2 == [.read, .write])
        #expect(parent.handleFault(at: base) == .segmentationFault(code: LinuxSignal.SEGV_ACCERR))
        parent.release()
    }

    @Test func aFaultWindowMapsSharedAndOwnPagesEachWithItsProtection() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(MemoryManager.faultWindow, at: 0x2800_0000, fixed: true))
        try parent.copyOut([UInt8](repeating: 1, count: 0x2000), to: base)
        let child = try parent.fork()
        // The child's own page in the middle of pages it shares.
        try child.copyOut([2], to: base + 0x1000)
        let childStub = RecordingMapper()
        _ = child.acquireAddressSpace { childStub }
        #expect(child.handleFault(at: base) == .mapped)
        func protection(at address: UInt64) -> Protection? {
            childStub.maps.last { $0.address <= address && address - $0.address < $0.length }?.protection
        }
        #expect(protection(at: base) == .read)
        #expect(protection(at: base + 0x1000) == [.read, .write])
        #expect(protection(at: base + 0x2000) == [.read, .write])
        #expect(protection(at: base + MemoryManager.faultWindow - 1) == [.read, .write])
        child.release()
        parent.release()
    }

    @Test func theSentrysWriteReplacesTheStubsStaleMapping() throws {
        let (parent, stub) = try makeMM()
        let base = try parent.map(anonymous(0x4000, at: 0x3000_0000, fixed: true))
        #expect(parent.handleFault(at: base) == .mapped)
        let child = try parent.fork()
        stub.maps = []
        try parent.copyOut([7], to: base + 0x2000)
        let run = try #require(parent.privatePageRuns.first { $0.start <= base + 0x2000 && $0.end > base + 0x2000 })
        #expect(stub.maps.count == 1)
        #expect(stub.maps.first?.address == base + 0x2000)
        #expect(stub.maps.first?.length == Page.size)
        #expect(stub.maps.first?.offset == run.offset + (base + 0x2000 - run.start))
        #expect(stub.maps.first?.protection == [.read, .write])
        #expect(try child.copyIn(from: base + 0x2000, count: 1) == [0])
        child.release()
        parent.release()
    }

    @Test func theLoadersForcedWriteToAReadOnlyMappingCopiesToo() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x2000, at: 0x3800_0000, fixed: true, protection: .read))
        try parent.copyOut([1], to: base, force: true)
        let child = try parent.fork()
        try child.copyOut([2], to: base, force: true)
        #expect(try parent.copyIn(from: base, count: 1) == [1])
        #expect(try child.copyIn(from: base, count: 1) == [2])
        child.release()
        parent.release()
    }

    @Test func mprotectKeepsCopyOnWritePagesWithoutWrite() throws {
        let (parent, stub) = try makeMM()
        let base = try parent.map(anonymous(MemoryManager.faultWindow, at: 0x4000_0000, fixed: true))
        #expect(parent.handleFault(at: base) == .mapped)
        let child = try parent.fork()
        try parent.protect(address: base, length: MemoryManager.faultWindow, protection: .read)
        stub.protects = []
        try parent.protect(address: base, length: MemoryManager.faultWindow, protection: [.read, .write])
        #expect(stub.protects.map(\.2) == [.read])
        child.release()
        #expect(parent.handleFault(at: base) == .mapped)
        #expect(stub.protects.last?.2 == [.read, .write])
        parent.release()
    }

    /// Every way a process lets go of pages, in every order between parent
    /// and child: a page is freed when its last owner lets go, not before.
    @Test(arguments: [
        ["parent.munmap", "child.dontneed", "child.exit", "parent.exit"],
        ["child.mremap", "parent.dontneed", "parent.exit", "child.exit"],
        ["child.exit", "parent.mremap", "parent.munmap", "parent.exit"],
        ["parent.exit", "child.munmap", "child.mremap", "child.exit"],
        ["child.munmap", "parent.munmap", "child.exit", "parent.exit"],
    ])
    func pagesAreFreedWhenTheirLastOwnerLetsGo(_ steps: [String]) throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x8000, at: 0x5000_0000, fixed: true))
        let bytes = (0..<0x8000).map { UInt8(truncatingIfNeeded: $0 / 0x1000 + 1) }
        try parent.copyOut(bytes, to: base)
        let file = try #require(parent.memoryFile)
        let child = try parent.fork()
        var alive = ["parent": parent, "child": child]
        for step in steps {
            let parts = step.split(separator: ".").map(String.init)
            let mm = try #require(alive[parts[0]])
            switch parts[1] {
            case "munmap": try mm.unmap(address: base, length: 0x2000)
            case "dontneed": try mm.dropPages(address: base + 0x2000, length: 0x2000)
            case "mremap":
                _ = try mm.remap(oldAddress: base + 0x4000, oldLength: 0x4000, newLength: 0x4000, flags: [.mayMove, .fixed],
                                 newAddress: 0x6000_0000)
            default:
                mm.release()
                alive[parts[0]] = nil
            }
            // What every live MM still holds is intact, and the MemoryFile
            // holds exactly the pages some MM holds.
            var held = RangeSet()
            for (_, survivor) in alive {
                for run in survivor.privatePageRuns {
                    held.insert(run.offset..<run.offset + (run.end - run.start))
                    let page = run.start >= 0x6000_0000 ? (run.start - 0x6000_0000) / 0x1000 + 4 : (run.start - base) / 0x1000
                    #expect(try survivor.copyIn(from: run.start, count: 1) == [UInt8(page + 1)])
                }
            }
            #expect(file.usedBytes == held.totalLength, "after \(step)")
        }
        #expect(file.usedBytes == 0)
    }

    @Test func aCopyPastTheMemoryLimitIsTheOOMPath() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x2000, at: 0x7000_0000, fixed: true))
        try parent.copyOut([UInt8](repeating: 1, count: 0x2000), to: base)
        #expect(parent.handleFault(at: base) == .mapped)
        let file = try #require(parent.memoryFile)
        file.limit = file.usedBytes
        let child = try parent.fork()
        #expect(!file.takeChargeFailure())
        #expect(throws: SyscallError.enomem) { try child.copyOut([2], to: base) }
        #expect(file.takeChargeFailure())
        #expect(parent.handleFault(at: base) == .busError)
        #expect(file.takeChargeFailure())
        #expect(try parent.copyIn(from: base, count: 1) == [1])
        // Once the child is gone the parent's pages are its own again: no copy, no charge.
        child.release()
        #expect(parent.handleFault(at: base) == .mapped)
        try parent.copyOut([3], to: base)
        #expect(!file.takeChargeFailure())
        file.limit = .max
        parent.release()
    }

    @Test func aForkedPairSavesItsSharedPagesOnceAndSharesThemAfterTheLoad() throws {
        let (parent, _) = try makeMM()
        let base = try parent.map(anonymous(0x10000, at: 0x7100_0000, fixed: true))
        try parent.copyOut([UInt8](repeating: 5, count: 0x10000), to: base)
        let child = try parent.fork()
        try child.copyOut([6], to: base)
        let file = try #require(parent.memoryFile)
        let pair = ForkedPair()
        pair.parent = parent
        pair.child = child
        var registry = SentryStateTypes.registry
        registry.register(ForkedPair.self)
        let bytes = try StateEncoder.encode(root: pair, registry: registry)
        let loaded = try StateDecoder(registry: registry).decode(bytes, as: ForkedPair.self)
        let (loadedParent, loadedChild) = (try #require(loaded.parent), try #require(loaded.child))
        let loadedFile = try #require(loadedParent.memoryFile)
        #expect(loadedChild.memoryFile === loadedFile)
        #expect(loadedFile.usedRanges == file.usedRanges)
        #expect(loadedFile.usedBytes == 0x10000 + Page.size)
        func offset(of address: UInt64, in mm: MemoryManager) throws -> UInt64 {
            let run = try #require(mm.privatePageRuns.first { $0.start <= address && address < $0.end })
            return run.offset + (address - run.start)
        }
        let shared = try offset(of: base + 0x1000, in: loadedParent)
        #expect(try offset(of: base + 0x1000, in: loadedChild) == shared)
        #expect(loadedFile.referenceCount(at: shared) == 2)
        #expect(loadedFile.referenceCount(at: try offset(of: base, in: loadedParent)) == 1)
        #expect(loadedFile.referenceCount(at: try offset(of: base, in: loadedChild)) == 1)

        // The restored pages hold zeros (no pages image here): give the
        // shared one contents through the MemoryFile, then write one side.
        let pointer = try #require(loadedFile.pointer(at: shared, count: 1))
        pointer.storeBytes(of: 5, as: UInt8.self)
        try loadedChild.copyOut([7], to: base + 0x1000)
        #expect(try loadedParent.copyIn(from: base + 0x1000, count: 1) == [5])
        #expect(try loadedChild.copyIn(from: base + 0x1000, count: 1) == [7])
        loadedParent.release()
        loadedChild.release()
        #expect(loadedFile.usedBytes == 0)
        child.release()
        parent.release()
    }

    @Test func anImageWhosePrivatePagesAreNotAllocatedIsRefused() throws {
        let (mm, _) = try makeMM()
        let base = try mm.map(anonymous(0x2000, at: 0x7200_0000, fixed: true))
        try mm.copyOut([1], to: base)
        let file = try #require(mm.memoryFile)
        let run = try #require(mm.privatePageRuns.first)
        // Behind the MM's back: the image then claims pages nobody allocated.
        file.free(offset: run.offset, length: run.end - run.start)
        let pair = ForkedPair()
        pair.parent = mm
        var registry = SentryStateTypes.registry
        registry.register(ForkedPair.self)
        let bytes = try StateEncoder.encode(root: pair, registry: registry)
        #expect(throws: StateError.self) { _ = try StateDecoder(registry: registry).decode(bytes, as: ForkedPair.self) }
    }
}

/// A parent and its forked child as one image root.
final class ForkedPair: Savable, @unchecked Sendable {
    static let savedTypeName = "test.ForkedPair"
    static let notSaved: Set<String> = []
    var parent: MemoryManager?
    var child: MemoryManager?

    init() {}

    func save(to sink: inout SaveSink) throws {
        try sink.save("parent", parent)
        try sink.save("child", child)
    }

    func load(from source: inout LoadSource) throws {
        parent = try source.load("parent")
        child = try source.load("child")
    }
}

@Suite struct PageReferenceCounts {
    @Test func runsSplitOnChangeAndMergeBackWhenCountsAgree() {
        var references = PageReferences()
        references.retain(0..<0x4000)
        references.retain(0x1000..<0x2000)
        #expect(references.runs.map(\.count) == [1, 2, 1])
        #expect(references.shared(in: 0..<0x4000) == [0x1000..<0x2000])
        #expect(references.release(0x1000..<0x2000).isEmpty)
        #expect(references.runs == [PageReferences.Run(range: 0..<0x4000, count: 1)])
        #expect(references.release(0x3000..<0x6000) == [0x3000..<0x4000])
        #expect(references.release(0x3000..<0x4000).isEmpty, "a second free frees nothing")
        references.retain(0x5000..<0x6000)
        references.retain(0..<0x6000)
        #expect(references.runs.map(\.range) == [0..<0x3000, 0x3000..<0x5000, 0x5000..<0x6000])
        #expect(references.runs.map(\.count) == [2, 1, 2])
        #expect(references.count(at: 0x4000) == 1)
        #expect(references.count(at: 0x6000) == 0)
        #expect(references.release(0..<0x6000) == [0x3000..<0x5000])
        #expect(references.release(0..<0x6000) == [0..<0x3000, 0x5000..<0x6000])
        #expect(references.runs.isEmpty)
    }
}

/// The parent's side of a fork with a real stub: its next store to a private
/// page faults (the fork took write away on the host) and lands in its own copy.
@Suite struct CopyOnWriteInARealStub {
    @Test func theParentsStoreAfterAForkFaultsAndGoesToItsOwnCopy() throws {
        let outcome = Mutex<Result<StoresAroundAFork, any Error>?>(nil)
        let driver = try DedicatedThread(name: "cow-test") {
            let result = Result { try storesAroundAFork() }
            outcome.withLock { $0 = result }
        }
        driver.join()
        let stores = try #require(outcome.withLock { $0 }).get()
        #expect(stores.faultsAfterFork == [LinuxSignal.SEGV_ACCERR])
        #expect(stores.parent == 2)
        #expect(stores.child == 1)
    }
}

private struct StoresAroundAFork: Sendable {
    var faultsAfterFork: [Int32] = []
    var parent: UInt8 = 0
    var child: UInt8 = 0
}

/// Runs on its own thread, the stub's tracer: the stub stores 1, calls
/// getpid (where the fork happens), stores 2 and calls getpid again.
private func storesAroundAFork() throws -> StoresAroundAFork {
    let file = try MemoryFile.create(capacity: 1 << 30)
    let mm = MemoryManager(memoryFile: file)
    let space = try AddressSpace(memoryFile: file.fd)
    _ = mm.acquireAddressSpace { PlatformAddressSpace(space) }
    defer {
        mm.releaseAddressSpace()
        mm.release()
    }
    let data = try mm.map(anonymous(0x4000))
    let code = try mm.map(anonymous(0x1000, protection: [.read, .execute]))
    let address = (0..<8).map { UInt8(truncatingIfNeeded: data >> ($0 * 8)) }
    let getpid: [UInt8] = [0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05]  // mov eax, 39; syscall
    try mm.copyOut([0x48, 0xbf] + address + [0xc6, 0x07, 0x01] + getpid + [0xc6, 0x07, 0x02] + getpid,
                   to: code, force: true)
    let context = try Context(addressSpace: space)
    var registers = Registers(rip: code, rsp: 0)
    var result = StoresAroundAFork()
    var child: MemoryManager?
    defer { child?.release() }
    while true {
        let stop = try context.switchToApp(registers: &registers)
        switch stop {
        case .syscall(number: 39) where child == nil:
            child = try mm.fork()
        case .syscall(number: 39):
            result.parent = try mm.copyIn(from: data, count: 1)[0]
            result.child = try #require(child).copyIn(from: data, count: 1)[0]
            return result
        case .fault(let fault):
            if child != nil { result.faultsAfterFork.append(fault.code) }
            guard mm.handleFault(at: fault.address) == .mapped else { return result }
        default:
            return result
        }
    }
}

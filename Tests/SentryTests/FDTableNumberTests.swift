@testable import Sentry
import State
import Testing

/// Descriptor numbers low and high, as the table's array and dictionary hold them.
@Suite struct FDTableNumberTests {
    @Test func numbersLowAndHighInstallLookUpAndCloseAlike() throws {
        let table = FDTable()
        let file = EventFile(initialValue: 0, semaphore: false, flags: 0)
        let high = FDEntries.denseLimit + 10
        #expect(try table.install(file, closeOnExec: false) == 0)
        try table.install(file, at: 7, closeOnExec: true, limit: 1 << 20)
        try table.install(file, at: high, closeOnExec: false, limit: 1 << 20)
        #expect(try table.install(file, closeOnExec: false) == 1, "the lowest free number")
        #expect(table.descriptors.map(\.fd) == [0, 1, 7, high])
        #expect(try table.get(high) === file)
        #expect(throws: SyscallError.ebadf) { try table.get(6) }
        #expect(throws: SyscallError.ebadf) { try table.get(-1) }
        #expect(throws: SyscallError.ebadf) { try table.get(high + 1) }
        table.closeOnExec()
        #expect(table.descriptors.map(\.fd) == [0, 1, high])
        try table.remove(high)
        #expect(throws: SyscallError.ebadf) { try table.remove(high) }
        let copy = table.fork()
        #expect(copy.descriptors.map(\.fd) == [0, 1])
        copy.removeAll()
        table.removeAll()
        #expect(table.descriptors.isEmpty)
    }

    @Test func aSavedTableKeepsEveryNumber() throws {
        let (kernel, task) = try KernelState().makeKernel()
        let file = EventFile(initialValue: 3, semaphore: false, flags: 0)
        try task.fdTable.install(file, at: 5, closeOnExec: true, limit: 1 << 20)
        try task.fdTable.install(file, at: FDEntries.denseLimit * 2, closeOnExec: false, limit: 1 << 20)
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        let restored = try #require(loaded.pidNamespace.task(task.id))
        let numbers = restored.fdTable.descriptors.map { ($0.fd, $0.entry.closeOnExec) }
        #expect(numbers.contains { $0 == (5, true) })
        #expect(numbers.contains { $0 == (FDEntries.denseLimit * 2, false) })
        restored.fdTable.removeAll()
        task.fdTable.removeAll()
    }
}

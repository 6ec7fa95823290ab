import Glibc
import State
import Synchronization
import Testing
@testable import Sentry

/// What the Sentry gives a process `runsc exec` starts: it is not init, its
/// exit reaches the host with its ID, and its stdio (runsc exec's own host
/// FDs) is closed with it and saved as disconnected.
@Suite struct ExecProcessTests {
    @Test func aSecondProcessIsNotInitAndItsExitIsReportedWithItsID() throws {
        let (kernel, first) = try KernelState().makeKernel()
        let second = try kernel.createProcess(mm: MemoryManager(memoryFile: kernel.memoryFile), credentials: Credentials(),
                                              limits: Limits(), name: "exec")
        #expect(kernel.initThreadGroup === first.threadGroup)
        #expect(second.processID != first.processID)
        let seen = Mutex<[Int32: ExitReason]>([:])
        kernel.onProcessExit { pid, reason in seen.withLock { $0[pid] = reason } }
        let group = try #require(second.threadGroup)
        kernel.threadGroupFinished(group, .exited(code: 3))
        #expect(seen.withLock { $0 } == [second.processID: ExitReason.exited(code: 3)])
    }

    @Test func passedStdioIsClosedWithItsLastReference() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let table = FDTable()
        try table.install(HostStdioFile.passed(hostFD: ends[1], flags: LinuxFile.writeOnly), at: 1, closeOnExec: false)
        #expect(try table.get(1).write(Array("out".utf8), at: nil, waiter: nil) == 3)
        table.removeAll()
        #expect(fcntl(ends[1], F_GETFD) < 0 && errno == EBADF, "the passed FD is closed with the description")
    }

    /// A restore in the process that saved the image (the save/restore test
    /// mode) keeps a passed FD, as a duplicate; a restore elsewhere finds it
    /// disconnected (ExecCommandTests' image with an exec'd process).
    @Test func passedStdioIsKeptByARestoreInTheSameProcessAndTheContainersStaysAtItsNumber() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let (kernel, task) = try KernelState().makeKernel()
        try task.fdTable.install(HostStdioFile.passed(hostFD: ends[1], flags: LinuxFile.writeOnly), at: 1, closeOnExec: false)
        try task.fdTable.install(HostStdioFile(hostFD: HostStdioFile.standardError, flags: LinuxFile.writeOnly), at: 2,
                                 closeOnExec: false)
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        task.fdTable.removeAll()
        let restored = try #require(loaded.pidNamespace.task(task.id))
        let output = try #require(try restored.fdTable.get(1) as? HostStdioFile)
        #expect(output.hostFD != HostStdioFile.disconnectedFD && output.hostFD != ends[1], "a duplicate of the passed FD")
        #expect(try output.write(Array("after".utf8), at: nil, waiter: nil) == 5)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(read(ends[0], &buffer, buffer.count) == 5)
        #expect(Array(buffer.prefix(5)) == Array("after".utf8))
        #expect((try restored.fdTable.get(2) as? HostStdioFile)?.hostFD == HostStdioFile.standardError)
        restored.fdTable.removeAll()
    }
}

import Testing
@testable import Platform
@testable import Sentry

/// What a process's exit takes with it.
@Suite struct ProcessExitTests {
    /// exit_itimers: an exiting process's POSIX timers are deleted with it,
    /// so a zombie's periodic timer neither fires for nobody until the reap
    /// nor keeps its reservation.
    @Test func anExitedProcessKeepsNoPosixTimer() throws {
        let (kernel, _) = try KernelState().makeKernel()
        let child = try kernel.createProcess(mm: MemoryManager(memoryFile: kernel.memoryFile), credentials: Credentials(),
                                             limits: Limits(), name: "timers")
        let group = try #require(child.threadGroup)
        let id = try group.createTimer(clock: Time.monotonic, event: nil, creator: child)
        _ = try group.setTimer(id, absolute: false, value: 1_000_000, interval: 1_000_000, clocks: kernel.clocks)
        #expect(group.lock.withLock { _ in group.signalTimers.posix.count } == 1)
        kernel.threadGroupFinished(group, .exited(code: 0))
        #expect(group.lock.withLock { _ in group.signalTimers.posix.isEmpty })
    }
}

/// What a container's end lets go on the host.
@Suite struct ContainerEndTests {
    /// When init exits, the stub pool keeps no idle stub of the kernel's
    /// MemoryFile (it would hold all the kernel's memory): a kernel that
    /// never deinits, in a host process that runs several, leaks none.
    @Test func theStubPoolKeepsNoStubOfAnEndedContainer() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        let group = try #require(task.threadGroup)
        let identity = try MemoryFileIdentity(descriptor: kernel.memoryFile.fd)
        kernel.threadGroupFinished(group, .exited(code: 0))
        let stub = try StubProcess.create(memoryFile: kernel.memoryFile.fd)
        let kept = StubPool.shared.give(StubPool.Idle(pid: stub, memoryFile: identity))
        if !kept { StubProcess.killAndReap(stub) }
        #expect(!kept, "an idle stub of an ended container's MemoryFile was kept")
    }
}

import Testing
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

import Glibc
import Testing
@testable import Sentry

@Suite struct SleepRestart {
    @Test func anInterruptedNanosleepRestartsWithTheTimeThatRemained() throws {
        let memoryFile = try MemoryFile.create(capacity: 1 << 26)
        let kernel = Kernel(memoryFile: memoryFile, hostName: "box")
        let mm = MemoryManager(memoryFile: memoryFile)
        var request = MemoryManager.MappingRequest(address: 0x1000_0000, length: 0x1000, protection: [.read, .write],
                                                   shared: false)
        request.fixed = true
        _ = try mm.map(request)
        let task = try kernel.createProcess(mm: mm, credentials: Credentials(), limits: Limits(), name: "sleeper")
        // struct timespec { 0 s, 300 ms } at the mapping's start.
        try task.copyOut(value: (Int64(0), Int64(300_000_000)), to: 0x1000_0000)
        task.registers.rip = 0x40_1002
        task.registers.origRax = 35
        task.registers.rdi = 0x1000_0000
        task.registers.rsi = 0

        let started = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
        let box = ResultBox()
        let thread = Thread {
            box.value = task.dispatch(35, kernel: kernel)
            box.finished = true
        }
        usleep(50_000)
        task.interrupt()
        thread.join()

        #expect(box.finished)
        #expect(box.value == SyscallError.erestartRestartblock.returnValue, "the call did not complete: it is set to restart")
        // What the return to user mode does when no handler runs (a checkpoint).
        task.rewindForRestart(.erestartRestartblock)
        #expect(task.registers.rip == 0x40_1000)
        #expect(task.registers.rax == 219)
        guard case .sleep(let clock, let deadline, _)? = task.restartBlock else {
            Issue.record("no restart block")
            return
        }
        #expect(clock == Time.monotonic)
        #expect(deadline > kernel.clocks.monotonic())

        #expect(task.dispatch(219, kernel: kernel) == 0)
        let elapsed = Clocks.hostNanoseconds(CLOCK_MONOTONIC) - started
        #expect(elapsed >= 300_000_000)
        #expect(elapsed < 600_000_000, "the restart slept only what remained")
        #expect(task.restartBlock == nil)
    }
}

private final class ResultBox: @unchecked Sendable {
    var value: Int64?
    var finished = false
}

/// A plain pthread for tests that block.
private final class Thread: @unchecked Sendable {
    private var handle = pthread_t()
    private let body: () -> Void

    init(_ body: @escaping () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Thread>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, box)
    }

    func join() { pthread_join(handle, nil) }
}

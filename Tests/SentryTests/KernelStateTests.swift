import Dispatch
import State
import Synchronization
import Testing
@testable import Sentry

@Suite struct KernelState {
    /// A kernel with an init process loaded from an ELF image, as the Loader builds it.
    func makeKernel() throws -> (Kernel, Task) {
        let memoryFile = try MemoryFile.create(capacity: 1 << 30)
        let kernel = Kernel(memoryFile: memoryFile, hostName: "box")
        let mm = MemoryManager(memoryFile: memoryFile)
        let image = try ELFLoader.load(makeELF(), path: "/bin/prog", argv: ["prog"], envp: ["A=1"], into: mm,
                                       credentials: Credentials(), stackLimit: 8 << 20)
        var limits = Limits()
        limits[.nofile] = Limits.Limit(soft: 64, hard: 128)
        let task = try kernel.createProcess(mm: mm, credentials: Credentials(uid: 5, gid: 6), limits: limits,
                                            registers: image.registers, name: "prog")
        task.registers.rax = 0x1234
        task.setSignalMask(SignalSet(rawValue: 0x4000))
        return (kernel, task)
    }

    @Test func initIsPID1() throws {
        let (kernel, task) = try makeKernel()
        #expect(task.id == 1)
        #expect(task.processID == 1)
        #expect(kernel.initThreadGroup?.leader === task)
    }

    @Test func aKernelSavesAndLoadsWithItsTasksMemoryAndRegisters() throws {
        let (kernel, task) = try makeKernel()
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        let restored = try #require(loaded.pidNamespace.task(1))
        #expect(restored.registers == task.registers)
        #expect(restored.signalMask == task.signalMask)
        #expect(restored.credentials.effectiveUID == 5)
        #expect(restored.threadGroup?.limits[.nofile] == Limits.Limit(soft: 64, hard: 128))
        #expect(restored.threadGroup === loaded.initThreadGroup)
        #expect(restored.kernel === loaded)
        #expect(loaded.uts.hostName == "box")
        let mm = try #require(restored.mm)
        #expect(mm.mappings.map(\.range) == task.mm?.mappings.map(\.range))
        #expect(mm.privatePageRuns == task.mm?.privatePageRuns)
        #expect(mm.memoryFile === loaded.memoryFile)
        #expect(loaded.memoryFile.usedRanges == kernel.memoryFile.usedRanges)
    }

    /// Pending signals keep their order and siginfo, a standard signal
    /// coalesces, and the queues, the sigsuspend mask and the altstack are saved.
    @Test func pendingSignalsSaveWithTheirSiginfo() throws {
        let (kernel, task) = try makeKernel()
        let group = try #require(task.threadGroup)
        let realtime = Signal(rawValue: LinuxSignal.SIGRTMIN + 1)
        task.setSignalMask(SignalSet(rawValue: realtime.mask | Signal.user1.mask))
        for value in [7, 8] as [UInt64] {
            var info = SignalInfo(signal: realtime, code: LinuxSignal.SI_QUEUE, senderPID: 1, senderUID: 0)
            info.fields[1] = value
            try group.send(info)
        }
        try group.send(SignalInfo(signal: .user1, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0), to: task)
        try group.send(SignalInfo(signal: .user1, code: LinuxSignal.SI_USER, senderPID: 2, senderUID: 0), to: task)
        task.savedSignalMask = SignalSet(rawValue: 0x10)
        task.alternateSignalStack = SignalStack(base: 0x7000_0000, flags: 0, size: 0x10000)

        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        let restored = try #require(loaded.pidNamespace.task(1))
        #expect(restored.savedSignalMask == SignalSet(rawValue: 0x10))
        #expect(restored.alternateSignalStack == task.alternateSignalStack)
        #expect(restored.pendingSignals.entries.count == 1, "the second SIGUSR1 coalesced")
        #expect(restored.pendingSignalSet.contains(realtime))
        let first = try #require(restored.dequeueSignal(from: SignalSet(rawValue: realtime.mask)))
        let second = try #require(restored.dequeueSignal(from: SignalSet(rawValue: realtime.mask)))
        #expect(first.fields[1] == 7 && second.fields[1] == 8 && first.code == LinuxSignal.SI_QUEUE)
        #expect(!restored.pendingSignalSet.contains(realtime))
        #expect(restored.dequeueSignal(from: SignalSet(rawValue: Signal.user1.mask))?.senderPID == 1)
    }

    /// Past RLIMIT_SIGPENDING a queued real-time signal fails with EAGAIN,
    /// while kill(2)'s is still made pending, without its siginfo.
    @Test func realtimeSignalsPastTheLimitFailOrLoseTheirInfo() throws {
        let (_, task) = try makeKernel()
        let group = try #require(task.threadGroup)
        group.limits[.sigpending] = Limits.Limit(soft: 1, hard: 1)
        let signal = Signal(rawValue: LinuxSignal.SIGRTMIN + 2)
        task.setSignalMask(SignalSet(rawValue: signal.mask))
        try group.send(SignalInfo(signal: signal, code: LinuxSignal.SI_QUEUE, senderPID: 1, senderUID: 0))
        #expect(throws: SyscallError.eagain) {
            try group.send(SignalInfo(signal: signal, code: LinuxSignal.SI_QUEUE, senderPID: 1, senderUID: 0))
        }
        try group.send(SignalInfo(signal: signal, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0))
        #expect(task.dequeueSignal(from: SignalSet(rawValue: signal.mask))?.code == LinuxSignal.SI_QUEUE)
        #expect(task.dequeueSignal(from: SignalSet(rawValue: signal.mask)) == nil)
    }

    @Test func monotonicTimeContinuesAfterALoad() throws {
        let (kernel, _) = try makeKernel()
        let before = kernel.clocks.monotonic()
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        let after = loaded.clocks.monotonic()
        #expect(after >= before)
        #expect(after - before < 5_000_000_000)
    }

    @Test func exitReasonsEncodeAsWaitStatusesAndShellStatuses() {
        #expect(ExitReason.exited(code: 3).waitStatus == 0x300)
        #expect(ExitReason.exited(code: 3).shellStatus == 3)
        #expect(ExitReason.killed(signal: 11, coreDumped: true).waitStatus == 0x8b)
        #expect(ExitReason.killed(signal: 11, coreDumped: false).shellStatus == 139)
    }
}

/// A task that cannot run (a damaged image gave it no memory) must end the
/// container, not leave it waiting for a task that never exits.
@Suite struct TaskWithoutMemory {
    @Test func exitsAsKilledInsteadOfHanging() throws {
        let (kernel, task) = try KernelState().makeKernel()
        task.mm = nil
        let exited = DispatchSemaphore(value: 0)
        let reason = Mutex<ExitReason?>(nil)
        kernel.onInitExit { exit in
            reason.withLock { $0 = exit }
            exited.signal()
        }
        try task.start()
        #expect(exited.wait(timeout: .now() + 10) == .success)
        #expect(reason.withLock { $0 } == .killed(signal: 9, coreDumped: false))
    }
}

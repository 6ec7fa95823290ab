import Platform
import State
import Testing
@testable import Sentry

/// Process groups, sessions, stop and continue between two processes of
/// one kernel, the second made init's child in init's session and group as
/// fork makes it, neither running.
@Suite struct ProcessGroupsAndStops {
    /// Init (PID 1) and its child (PID 2), neither running.
    func makeFamily() throws -> (Kernel, Task, Task) {
        let memoryFile = try MemoryFile.create(capacity: 1 << 24)
        let kernel = Kernel(memoryFile: memoryFile, hostName: "box")
        let registers = Registers(rip: 0x40_0000, rsp: 0x7ff0_0000)
        let initTask = try kernel.createProcess(mm: MemoryManager(memoryFile: memoryFile), credentials: Credentials(),
                                                limits: Limits(), registers: registers, name: "init")
        let child = try kernel.createProcess(mm: MemoryManager(memoryFile: memoryFile), credentials: Credentials(uid: 7, gid: 7),
                                             limits: Limits(), registers: registers, name: "child")
        let group = try #require(child.threadGroup), parent = try #require(initTask.threadGroup)
        kernel.processTree.withLock { _ in
            group.parent = parent
            parent.children.append(group)
        }
        group.inheritJobControl(from: parent)
        return (kernel, initTask, child)
    }

    func setpgid(_ task: Task, _ pid: Int32, _ pgid: Int32) -> SyscallError? {
        do {
            _ = try ProcessGroups.setpgid(task, SyscallArguments(UInt64(bitPattern: Int64(pid)),
                                                                 UInt64(bitPattern: Int64(pgid))))
            return nil
        } catch {
            return error
        }
    }

    @Test func setpgidOfAChildFollowsLinux() throws {
        let (_, initTask, child) = try makeFamily()
        let group = try #require(child.threadGroup)
        #expect(setpgid(initTask, 2, 0) == nil)
        #expect(group.processGroupID == 2)
        #expect(setpgid(initTask, 2, 77) == .eperm, "no such group")
        #expect(setpgid(initTask, 2, 1) == nil)
        #expect(group.processGroupID == 1)
        #expect(setpgid(child, 1, 0) == .esrch, "neither the caller nor its child")
        #expect(setpgid(initTask, 3, 0) == .esrch)
        group.execed()
        #expect(setpgid(initTask, 2, 0) == .eacces, "exec'd since its fork")
        group.sessionID = 5
        #expect(setpgid(initTask, 2, 0) == .eperm, "a child in another session")
        group.sessionID = 1
        // setsid: the child leads no group, so it may start a session; then it is a leader.
        #expect(try ProcessGroups.setsid(child, SyscallArguments()) == 2)
        #expect(group.sessionID == 2 && group.processGroupID == 2)
        #expect(setpgid(initTask, 2, 1) == .eperm, "a child in another session")
        #expect(setpgid(child, 0, 0) == .eperm, "a session leader")
        #expect(throws: SyscallError.eperm) { try ProcessGroups.setsid(child, SyscallArguments()) }
    }

    /// The parent gets SIGCHLD with CLD_STOPPED, then CLD_CONTINUED, and
    /// its wait sees each once; a continue clears an unreported stop.
    @Test func stopAndContinueReachTheParent() throws {
        let (kernel, initTask, child) = try makeFamily()
        let group = try #require(child.threadGroup)
        initTask.setSignalMask(SignalSet(rawValue: Signal.child.mask))
        let proc = KernelProcSource(kernel: kernel)
        #expect(proc.snapshot(of: 2)?.state == "R (running)", "not asleep in the Sentry: runnable")
        group.beginStop(.stop, takenBy: child)
        #expect(group.isStopped)
        #expect(proc.snapshot(of: 2)?.state == "T (stopped)", "/proc/2/stat and status show T")
        let stopped = try #require(initTask.dequeueSignal(from: SignalSet(rawValue: Signal.child.mask)))
        #expect(stopped.code == LinuxProcess.CLD_STOPPED)
        #expect(stopped.senderPID == 2 && stopped.senderUID == 7)
        #expect(Int32(truncatingIfNeeded: stopped.fields[1]) == Signal.stop.rawValue)
        #expect(group.takeStopReport(keep: true) == .stop)
        #expect(group.takeStopReport(keep: false) == .stop)
        #expect(group.takeStopReport(keep: false) == nil)

        try group.send(SignalInfo(signal: .cont, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0))
        #expect(!group.isStopped)
        let continued = try #require(initTask.dequeueSignal(from: SignalSet(rawValue: Signal.child.mask)))
        #expect(continued.code == LinuxProcess.CLD_CONTINUED)
        #expect(Int32(truncatingIfNeeded: continued.fields[1]) == Signal.cont.rawValue)
        #expect(proc.snapshot(of: 2)?.state == "R (running)")
        #expect(group.takeContinueReport(keep: false))
        #expect(!group.takeContinueReport(keep: false))

        group.beginStop(.stop, takenBy: child)
        try group.send(SignalInfo(signal: .cont, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0))
        #expect(group.takeStopReport(keep: false) == nil, "the continue came before the wait")
        #expect(group.takeContinueReport(keep: false))
    }

    @Test func noSIGCHLDOnStopWithSANOCLDSTOP() throws {
        let (_, initTask, child) = try makeFamily()
        let parent = try #require(initTask.threadGroup), group = try #require(child.threadGroup)
        initTask.setSignalMask(SignalSet(rawValue: Signal.child.mask))
        var action = parent.signalHandlers.action(for: .child)
        action.flags |= LinuxSignal.SA_NOCLDSTOP
        parent.signalHandlers.setAction(action, for: .child)
        group.beginStop(.stop, takenBy: child)
        #expect(group.isStopped)
        #expect(initTask.dequeueSignal(from: SignalSet(rawValue: Signal.child.mask)) == nil)
        #expect(group.takeStopReport(keep: false) == .stop, "the wait still sees the stop")
    }

    /// Init's group has no parent outside it: orphaned. The child in its
    /// own group under init, in init's session, is not.
    @Test func terminalStopsStopOnlyAGroupThatIsNotOrphaned() throws {
        let (_, initTask, child) = try makeFamily()
        let parent = try #require(initTask.threadGroup), group = try #require(child.threadGroup)
        parent.beginStop(.terminalStop, takenBy: initTask)
        #expect(!parent.isStopped)
        group.beginStop(.terminalStop, takenBy: child)
        #expect(!group.isStopped, "in init's (orphaned) group")
        group.processGroupID = 2
        group.beginStop(.terminalInput, takenBy: child)
        #expect(group.isStopped)
    }

    /// prepare_signal: SIGCONT discards pending stop signals, a stop signal a pending SIGCONT.
    @Test func continueAndStopDiscardEachOther() throws {
        let (_, _, child) = try makeFamily()
        let group = try #require(child.threadGroup)
        child.setSignalMask(SignalSet(rawValue: Signal.terminalStop.mask | Signal.cont.mask))
        try group.send(SignalInfo(signal: .terminalStop, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0))
        #expect(child.pendingSignalSet.contains(.terminalStop))
        try group.send(SignalInfo(signal: .cont, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0))
        #expect(!child.pendingSignalSet.contains(.terminalStop))
        #expect(child.pendingSignalSet.contains(.cont))
        try group.send(SignalInfo(signal: .stop, code: LinuxSignal.SI_USER, senderPID: 1, senderUID: 0))
        #expect(!child.pendingSignalSet.contains(.cont))
        #expect(child.pendingSignalSet.contains(.stop))
    }

    @Test func aStoppedProcessSavesAndLoadsStopped() throws {
        let (kernel, _, child) = try makeFamily()
        let group = try #require(child.threadGroup)
        group.processGroupID = 2
        group.beginStop(.terminalOutput, takenBy: child)
        let bytes = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        let restored = try #require(loaded.pidNamespace.threadGroup(2))
        #expect(restored.isStopped)
        #expect(restored.processGroupID == 2 && restored.sessionID == 1)
        #expect(restored.takeStopReport(keep: false) == .terminalOutput)
    }
}

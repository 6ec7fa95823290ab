import Foundation
import Testing

/// Signal handlers in the sandbox, each compared with the same program run
/// natively: frames, siginfo, masks, altstacks, faults recovered with
/// siglongjmp, SA_RESTART against EINTR with signals sent by `runsc kill`,
/// and a checkpoint taken inside a handler with a real-time signal pending.
@Suite(.serialized) struct SignalTests {
    @Test func handlersMasksAndFaultsMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("signal_cases")
        let native = try Fixtures.runNatively("signal_cases")
        #expect(native.status == 0)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Faults that must kill whatever the handler (blocked, ignored), frames
    /// that cannot be built or returned through, and a handler that moves
    /// the saved rip past a faulting instruction.
    @Test(arguments: ["blocked", "ignored", "norestorer", "badfp", "mxcsr17", "skip"])
    func uncatchableFaultsAndBadFramesEndAsOnLinux(_ mode: String) throws {
        let sandbox = try SandboxRun(["/bin/signal_fatal", mode], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("signal_fatal"),
                                         toPath: sandbox.bundle + "/rootfs/bin/signal_fatal")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively("signal_fatal", [mode])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// kill(-1) signals every process but the caller and init: with the
    /// caller alone in the container that is none (ESRCH). Not comparable
    /// with a native run, which would signal the whole host.
    @Test func killOfEveryProcessSparesTheCaller() throws {
        let sandbox = try SandboxRun(["/bin/signal_fatal", "killall"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("signal_fatal"),
                                         toPath: sandbox.bundle + "/rootfs/bin/signal_fatal")
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "kill(-1, SIGUSR1): -1 No such process, handled 0\n")
    }

    /// After each "ready N" line the program gets SIGUSR1 from outside:
    /// `runsc kill` in the sandbox, kill(2) natively.
    @Test(arguments: ["restart", "eintr"])
    func interruptedCallsRestartOrFailAsOnLinux(_ mode: String) throws {
        let native = try Self.runNatively("signal_restart", [mode], signalAfter: ["ready 1", "ready 2", "ready 3"])
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/signal_restart", mode])
        try session.runDetached("s1", output: "out")
        for ready in 1...3 {
            try Self.waitFor("ready \(ready)", in: session, output: "out")
            // Let the program reach its blocking call after printing the mark.
            usleep(100_000)
            #expect(try session.runsc("kill", "s1", "USR1").status == 0)
        }
        #expect(try session.wait("s1") == Int(native.status))
        #expect(session.read("out") == native.stdout, "\(session.errors(of: "out"))")
    }

    /// A checkpoint inside a SIGUSR1 handler running on an alternate stack and
    /// blocked in a read, with SIGRTMIN+1 (value 99) pending and blocked: the
    /// restored program takes SIGUSR2 nested on the altstack, finishes the
    /// handler and gets the real-time signal with its value.
    @Test func aHandlerOnAnAltstackAndAPendingSignalSurviveARestore() throws {
        let native = try Self.runNatively("signal_checkpoint", [], signalAfter: ["in handler"], signal: SIGUSR2)
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/signal_checkpoint"])
        try session.runDetached("c1", output: "before")
        try Self.waitFor("in handler", in: session, output: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restoreDetached("c2", image: "image", output: "after").status == 0)
        #expect(try session.runsc("kill", "c2", "USR2").status == 0)
        #expect(try session.wait("c2") == 0)
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init),
                "\(session.errors(of: "after"))")
    }

    static func waitFor(_ text: String, in session: CheckpointSession, output: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !session.read(output).contains(text) {
            guard Date() < deadline else {
                throw SetupError("\(output) never showed \(text.debugDescription): \(session.read(output)) \(session.errors(of: output))")
            }
            usleep(10_000)
        }
    }

    /// Runs fixture `name` natively, sending `signal` each time its output
    /// shows the next of `marks`.
    static func runNatively(_ name: String, _ arguments: [String], signalAfter marks: [String],
                            signal: Int32 = SIGUSR1) throws -> RunscProcess.Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("native-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Fixtures.binary(name))
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let read = { String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self) }
        for mark in marks {
            let deadline = Date().addingTimeInterval(30)
            while !read().contains(mark) && process.isRunning && Date() < deadline { usleep(5_000) }
            // Let the program reach its blocking call after printing the mark.
            usleep(100_000)
            kill(process.processIdentifier, signal)
        }
        process.waitUntilExit()
        try handle.close()
        return RunscProcess.Result(status: process.terminationStatus, stdout: read(), stderr: "")
    }
}

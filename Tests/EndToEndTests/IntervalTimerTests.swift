import Foundation
import Testing

/// alarm, setitimer and getitimer (ITIMER_REAL) compared with a native run,
/// and a timer armed before a checkpoint firing after the restore.
@Suite(.serialized) struct IntervalTimerTests {
    @Test func alarmAndSetitimerMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("itimer_cases")
        let native = try Fixtures.runNatively("itimer_cases")
        #expect(native.status == 0)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// SIGALRM's default action ends the process (128 + 14 natively).
    @Test func anUnhandledAlarmEndsTheProcessAsOnLinux() throws {
        let sandbox = try SandboxRun(["/bin/itimer_cases", "fatal"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("itimer_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/itimer_cases")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively("itimer_cases", ["fatal"])
        #expect(native.status == 142)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Armed for 2 s, checkpointed at once, restored: SIGALRM comes on the
    /// restored virtual clock and the output equals the straight run.
    @Test func aTimerArmedBeforeACheckpointFiresAfterTheRestore() throws {
        let native = try Fixtures.runNatively("itimer_cases", ["checkpoint"])
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/itimer_cases", "checkpoint"])
        try session.runDetached("t1", output: "before")
        try SignalTests.waitFor("armed", in: session, output: "before")
        let saved = try session.checkpoint("t1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(session.lines("before") == ["armed"], "the timer fired before the checkpoint")
        #expect(try session.restoreDetached("t2", image: "image", output: "after").status == 0)
        #expect(try session.wait("t2") == 0)
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init),
                "\(session.errors(of: "after"))")
    }
}

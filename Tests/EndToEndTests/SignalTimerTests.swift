import Foundation
import Testing

/// Timers that send signals beyond ITIMER_REAL (ITIMER_VIRTUAL, ITIMER_PROF,
/// POSIX timers), signalfd and timerfd, each compared with a native run, and timers
/// running across a checkpoint.
@Suite(.serialized) struct SignalTimerTests {
    @Test(arguments: ["cpu_timer_cases", "posix_timer_cases", "signalfd_cases", "signalfd_threads", "timerfd_cases",
                      "timer_pause_loop", "forged_timer_cases", "process_cputime_cases"])
    func fixtureMatchesANativeRun(_ name: String) throws {
        let result = try SyscallFixtureTests.runInSandbox(name)
        let native = try Fixtures.runNatively(name)
        #expect(native.status == 0)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Checkpointed after "armed" and restored: a busy loop's ITIMER_VIRTUAL
    /// (its CPU time is saved with the task), a periodic POSIX timer taken
    /// with sigwaitinfo mid-period, a signalfd with a queued real-time
    /// signal and a timer's signal to come, and a periodic timerfd. The output equals the straight run.
    @Test(arguments: ["cpu_timer_cases", "posix_timer_cases", "signalfd_cases", "timerfd_cases"])
    func aTimerRunningAcrossACheckpointMatchesTheStraightRun(_ name: String) throws {
        let native = try Fixtures.runNatively(name, ["checkpoint"])
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/" + name, "checkpoint"])
        try session.runDetached("t1", output: "before")
        try SignalTests.waitFor("armed", in: session, output: "before")
        let saved = try session.checkpoint("t1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restoreDetached("t2", image: "image", output: "after").status == 0)
        #expect(try session.wait("t2") == 0)
        // The text, not its lines: the checkpoint may come between two writes of one line.
        #expect(session.read("before") + session.read("after") == native.stdout, "\(session.errors(of: "after"))")
    }
}

import Foundation
import Testing

/// epoll and eventfd compared with native runs, and an epoll instance
/// across a checkpoint: its interest and ready lists come back as they
/// were, and a task blocked in epoll_wait is blocked again after restore.
@Suite struct EpollTests {
    @Test func epollCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("epoll_cases")
        let native = try Fixtures.runNatively("epoll_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// An edge-triggered echo server with 100 forked clients (50 TCP, 50
    /// unix), each message larger than a socket buffer written back in parts
    /// after EAGAIN: every echo intact, the same totals and hang-ups as natively.
    @Test func anEpollEchoServerWithAHundredClientsMatchesANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("epoll_echo")
        let native = try Fixtures.runNatively("epoll_echo")
        #expect(native.stdout.contains("50 tcp + 50 unix connections"))
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// stdin is a host pipe that gets a line 300 ms after the program waits: epoll_wait waits
    /// on it through the host poller and reports it readable, as natively.
    @Test func epollOnStdinWaitsForAHostPipe() throws {
        let binary = try Fixtures.binary("epoll_cases")
        let native = try PollTests.withDelayedInput { stdin in try Fixtures.run(binary, ["stdin"], stdin: stdin) }
        let sandbox = try SandboxRun(["/bin/epoll_cases", "stdin"], start: false)
        try FileManager.default.copyItem(atPath: binary, toPath: sandbox.bundle + "/rootfs/bin/epoll_cases")
        let result = try PollTests.runWithLateInput(sandbox, after: "waiting for stdin")
        #expect(native.stdout == "waiting for stdin\nnon-blocking read: -1 EAGAIN\nstdin epoll: 1 [0 0x1]\n"
                + "stdin read: line from the test\n")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Checkpointed after `line` ("ready": in a nanosleep with ready and
    /// idle items and an armed timerfd; "waiting": blocked in epoll_wait),
    /// restored, the program prints what a native run prints: the
    /// level-triggered pipe and the eventfd still ready, the edge-triggered
    /// pipe not reported twice, the timer firing after restore, not early.
    @Test(arguments: ["ready", "waiting"])
    func anEpollInstanceSurvivesACheckpoint(after line: String) throws {
        let native = try Fixtures.runNatively("ckpt_epoll")
        let session = try CheckpointSession(["/bin/ckpt_epoll"])
        try session.runDetached("c1", output: "before")
        let count = line == "ready" ? 2 : 4
        try session.waitForLines(count, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        let lines = session.lines("before") + session.lines("after")
        #expect(lines.joined(separator: "\n") + "\n" == native.stdout)
    }

    /// An edge-triggered echo server checkpointed with four TCP and unix
    /// connections whose data waits unread and four idle ones: after restore
    /// it is told of the ready ones once, then of the idle ones when they
    /// send, echoes all and sees every hang-up, as in a straight native run.
    @Test func anEpollServerWithIdleAndReadyClientsSurvivesACheckpoint() throws {
        let (output, native) = try CheckpointSession.outputAcrossCheckpoint("ckpt_epoll_server")
        #expect(native.contains("ready clients served: 0 1 2 3\n"))
        #expect(output == native)
    }

    /// epoll_wait's deadline is kept in the restart block across a
    /// checkpoint taken 1.5 s into its 4 s: it returns at its timeout on the
    /// virtual clock, not 1.5 s late.
    @Test func anEpollWaitCheckpointedWaitsOnlyWhatRemained() throws {
        let native = try Fixtures.runNatively("ckpt_epoll", ["timeout"])
        let session = try CheckpointSession(["/bin/ckpt_epoll", "timeout"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(1_500_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(native.stdout == "ready\nepoll_wait returned 0 at its timeout\n")
        let lines = session.lines("before") + session.lines("after")
        #expect(lines.joined(separator: "\n") + "\n" == native.stdout)
    }
}

import Foundation
import Testing

/// pidfds (pidfd_open, CLONE_PIDFD, pidfd_send_signal, pidfd_getfd,
/// waitid(P_PIDFD), poll and epoll on a pidfd) compared with a native run,
/// and pidfds held across a checkpoint.
@Suite(.serialized) struct PidFDTests {
    @Test func pidfdCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("pidfd_cases")
        let native = try Fixtures.runNatively("pidfd_cases")
        #expect(native.status == 0)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Checkpointed after "armed" while the parent waits in epoll on one
    /// child's pidfd (the child exits by itself 2 s later) and holds
    /// another's, and holds a third of a child reaped before: after the
    /// restore the epoll wakes at the exit, a signal through the second
    /// pidfd reaches the same child, and the third still names a reaped
    /// process (hung up, ESRCH, Pid -1). The output equals the straight run.
    @Test func pidfdsKeepNamingTheirProcessesAcrossARestore() throws {
        let native = try Fixtures.runNatively("pidfd_cases", ["checkpoint"])
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/pidfd_cases", "checkpoint"])
        try session.runDetached("t1", output: "before")
        try SignalTests.waitFor("armed", in: session, output: "before")
        let saved = try session.checkpoint("t1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restoreDetached("t2", image: "image", output: "after").status == 0)
        #expect(try session.wait("t2") == 0)
        #expect(session.read("before") + session.read("after") == native.stdout, "\(session.errors(of: "after"))")
    }
}

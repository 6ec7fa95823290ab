import Foundation
import Testing

/// flock(2) and fcntl record locks, held in the Sentry per inode: the cases
/// fixture against a native run, and locks with tasks blocked on them
/// across a checkpoint.
@Suite struct FileLockTests {
    @Test func lockCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("lock_cases")
        let native = try Fixtures.runNatively("lock_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }

    /// Checkpointed while the parent holds a flock and a record lock and a
    /// child waits for each: after the restore the locks are still held (a
    /// new child gets EAGAIN and F_GETLK names the parent), and each waiter
    /// gets its lock when the parent lets it go.
    @Test func heldLocksAndTheirWaitersSurviveACheckpoint() throws {
        let native = try Fixtures.runNatively("ckpt_locks")
        let session = try CheckpointSession(["/bin/ckpt_locks"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        let lines = session.lines("before") + session.lines("after")
        #expect(lines.joined(separator: "\n") + "\n" == native.stdout)
        #expect(native.stdout.hasSuffix("child: record lock granted\ndone\n"))
    }
}

import Foundation
import Testing

/// flock(2) and fcntl record locks, held in the Sentry per inode: the cases
/// fixture against a native run, and locks with tasks blocked on them
/// across a checkpoint.
@Suite struct FileLockTests {
    @Test func lockCasesMatchANativeRun() throws {
        try SyscallFixtureTests.expectMatchesNativeRun("lock_cases")
    }

    /// Checkpointed while the parent holds a flock and a record lock and a
    /// child waits for each: after the restore the locks are still held (a
    /// new child gets EAGAIN and F_GETLK names the parent), and each waiter
    /// gets its lock when the parent lets it go.
    @Test func heldLocksAndTheirWaitersSurviveACheckpoint() throws {
        let (output, native) = try CheckpointSession.outputAcrossCheckpoint("ckpt_locks")
        #expect(output == native)
        #expect(native.hasSuffix("child: record lock granted\ndone\n"))
    }
}

import Foundation
import Testing

/// Robust and PI futexes: futex_cases (static, and dynamic through ld.so and
/// the host's libc), each case against a native run.
@Suite struct FutexTests {
    static let fixtures = ["futex_cases", "dynamic_futex_cases"]

    static func matchesANativeRun(_ fixture: String, _ name: String) throws {
        let result = try ThreadTests.run(fixture, [name])
        let native = try Fixtures.runNatively(fixture, [name])
        #expect(native.status == 0)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// A robust mutex whose owner thread exits: the next locker, and one
    /// already blocked, gets EOWNERDEAD and makes it consistent.
    @Test(arguments: fixtures)
    func aRobustMutexWhoseOwnerThreadDiedIsTakenOver(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "robust-thread")
    }

    /// The same between processes through MAP_SHARED memory.
    @Test(arguments: fixtures)
    func aRobustMutexWhoseOwnerProcessDiedIsTakenOver(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "robust-process")
    }

    /// An exec releases the old image's robust mutexes as an exit does.
    @Test(arguments: fixtures)
    func anExecReleasesTheRobustMutexesItHeld(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "robust-exec")
    }

    /// set/get_robust_list's errors, another thread's head, and threads
    /// exiting with a circular, an unmapped and a pending-only list.
    @Test(arguments: fixtures)
    func hostileRobustListsAreWalkedAsLinuxDoes(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "robust-hostile")
    }

    /// A PTHREAD_PRIO_INHERIT mutex shared by 4 threads (FUTEX_LOCK_PI and
    /// UNLOCK_PI under contention).
    @Test(arguments: fixtures)
    func aPIMutexBetweenFourThreadsMatchesANativeRun(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "pi-mutex")
    }

    /// The PI protocol by hand: EDEADLK, EPERM, ESRCH, ENOSYS, EINVAL,
    /// EFAULT, the timeouts on each clock, the handoff on unlock and the
    /// take-over from an owner that exited holding the lock.
    @Test(arguments: fixtures)
    func thePIProtocolAnswersAsLinux(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "pi-raw")
    }

    /// Robust PI mutexes whose owner thread or process dies.
    @Test(arguments: fixtures)
    func aRobustPIMutexWhoseOwnerDiedIsTakenOver(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "pi-robust")
    }

    /// futex_waitv: its errors in Linux's order, EAGAIN, deadlines on both
    /// clocks, and the index of the word a FUTEX_WAKE woke.
    @Test(arguments: fixtures)
    func futexWaitvAnswersAsLinux(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "waitv")
    }

    /// pthread_cancel of threads blocked in read on a pipe, in nanosleep and
    /// in pthread_cond_wait: each ends PTHREAD_CANCELED, its cleanup run.
    @Test(arguments: fixtures)
    func pthreadCancelOfBlockedThreadsRunsTheirCleanup(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "cancel")
    }

    /// pthread_kill to each of 4 threads: each handler runs on its target.
    @Test(arguments: fixtures)
    func threadDirectedSignalsRunOnTheirThread(_ fixture: String) throws {
        try Self.matchesANativeRun(fixture, "thread-signals")
    }

    /// FUTEX_WAIT_REQUEUE_PI and FUTEX_CMP_REQUEUE_PI by hand: their errors,
    /// the first waiter given a free PI futex, the others requeued and
    /// handed it by each unlock, refusals (another target, a plain waiter,
    /// FUTEX_WAKE/CMP_REQUEUE/WAKE_OP meeting a requeue-PI waiter, EDEADLK),
    /// a requeued waiter's timeout and its take-over from a dead owner.
    @Test(arguments: ["errors", "free", "held", "refusals", "timeout", "owner-dies"])
    func requeuePIAnswersAsLinux(_ name: String) throws {
        try Self.matchesANativeRun("futex_requeue_pi", name)
    }

    /// Checkpointed with one thread requeued onto a held PI futex and
    /// another still in WAIT_REQUEUE_PI on its condition word: after the
    /// restore the second is requeued and both are handed the futex in
    /// turn, and the output equals a straight run.
    @Test func requeuePIWaitersContinueAfterARestore() throws {
        let native = try Fixtures.runNatively("futex_requeue_pi", ["checkpoint"])
        let expected = native.stdout.split(separator: "\n").map(String.init)
        let session = try CheckpointSession(["/bin/futex_requeue_pi", "checkpoint"])
        try session.runDetached("r1", output: "before")
        try session.waitForLines(4, in: "before")
        let saved = try session.checkpoint("r1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("r2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(!session.lines("after").isEmpty, "the checkpoint came after the end")
        #expect(session.lines("before") + session.lines("after") == expected)
        #expect(expected.suffix(3) == ["waiter on cond: 0, owns the pi futex: 1", "waiter on cond2: 0, owns the pi futex: 1",
                                       "done, pi word 0"])
    }

    /// Checkpointed while one thread holds a PI mutex and another is blocked
    /// in FUTEX_LOCK_PI: after the restore the unlock hands the lock to the
    /// waiter, and the output equals a straight run.
    @Test func aPIHandoffWorksAfterARestore() throws {
        let native = try Fixtures.runNatively("futex_cases", ["pi-checkpoint"])
        let expected = native.stdout.split(separator: "\n").map(String.init)
        let session = try CheckpointSession(["/bin/futex_cases", "pi-checkpoint"])
        try session.runDetached("p1", output: "before")
        try session.waitForLines(4, in: "before")
        let saved = try session.checkpoint("p1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("p2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
        #expect(expected.suffix(2) == ["waiter got the lock, word is its tid: 1", "done"])
    }
}

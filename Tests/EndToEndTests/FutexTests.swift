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
}

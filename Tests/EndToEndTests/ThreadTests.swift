import Foundation
import Testing

/// pthreads: each application thread a stub thread driven by its own Sentry
/// thread; thread_cases (static, and dynamic through ld.so and the host's
/// libc) against a native run.
@Suite struct ThreadTests {
    /// thread_cases or dynamic_thread_cases with `arguments`, in a sandbox
    /// with the host's system directories (the dynamic one needs them).
    static func run(_ fixture: String, _ arguments: [String] = []) throws -> RunscProcess.Result {
        try DynamicProgramTests.runWithHostSystem(["/bin/" + fixture] + arguments, copying: fixture)
    }

    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func pthreadsMatchANativeRun(_ fixture: String) throws {
        let result = try Self.run(fixture)
        let native = try Fixtures.runNatively(fixture)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// exit() in a second thread ends the process (exit_group) while main
    /// waits in pthread_join: the status is the thread's.
    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func exitFromASecondThreadEndsTheProcess(_ fixture: String) throws {
        let result = try Self.run(fixture, ["exit-group"])
        let native = try Fixtures.runNatively(fixture, ["exit-group"])
        #expect(native.status == 7)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// execve from a second thread: the other threads end, the process keeps
    /// its PID and the exec'ing thread takes the leader's TID.
    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func execFromASecondThreadKeepsThePID(_ fixture: String) throws {
        let result = try Self.run(fixture, ["exec"])
        let native = try Fixtures.runNatively(fixture, ["exec"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }
}

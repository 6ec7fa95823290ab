import Foundation
import Testing

/// Timers that send signals beyond ITIMER_REAL (ITIMER_VIRTUAL, ITIMER_PROF,
/// POSIX timers) and signalfd, each compared with a native run, and timers
/// running across a checkpoint.
@Suite(.serialized) struct SignalTimerTests {
    @Test(arguments: ["cpu_timer_cases"])
    func fixtureMatchesANativeRun(_ name: String) throws {
        let result = try SyscallFixtureTests.runInSandbox(name)
        let native = try Fixtures.runNatively(name)
        #expect(native.status == 0)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }
}

import Foundation
import Testing

/// fork, vfork, clone, clone3, exit, wait4, waitid, SIGCHLD and
/// reparenting (fixtures/process_cases.c), compared with a native run.
@Suite struct ProcessTests {
    @Test func processCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("process_cases")
        let native = try Fixtures.runNatively("process_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
    }
}

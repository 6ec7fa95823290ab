import Foundation
import Testing

/// splice, tee, vmsplice and sendfile between pipes and the file kinds,
/// against a native run.
@Suite struct SpliceTests {
    @Test func spliceCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("splice_cases")
        let native = try Fixtures.runNatively("splice_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

import Foundation
import Testing

/// splice, tee, vmsplice and sendfile between pipes and the file kinds,
/// against a native run.
@Suite struct SpliceTests {
    @Test func spliceCasesMatchANativeRun() throws {
        try SyscallFixtureTests.expectMatchesNativeRun("splice_cases")
    }
}

import Foundation
import Testing

/// inotify on changes made inside the sandbox: the cases fixture against a
/// native run on the container's /tmp.
@Suite struct InotifyTests {
    @Test func inotifyCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("inotify_cases")
        let native = try Fixtures.runNatively("inotify_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

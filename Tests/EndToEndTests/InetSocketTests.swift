import Foundation
import Testing

/// AF_INET and AF_INET6 sockets on the sandbox's loopback network compared
/// with native runs on the host's loopback.
@Suite struct InetSocketTests {
    /// TCP and UDP semantics (names, refusals, resets, readiness, options, dual stack).
    @Test func inetCasesMatchANativeRun() throws {
        let sandbox = try SandboxRun(["/bin/inet_cases"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("inet_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/inet_cases")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively("inet_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
    }
}

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

    /// Checkpointed while a TCP connection holds 150,000 unread bytes each
    /// way, a connection waits unaccepted with bytes sent and a datagram
    /// waits with its sender's address; after restore 1,150,000 bytes arrive
    /// each way with their checksums, the port is still held and the
    /// listener still accepts: as in a native run.
    @Test func tcpMidTransferSurvivesACheckpoint() throws {
        let native = try Fixtures.runNatively("ckpt_inet")
        let session = try CheckpointSession(["/bin/ckpt_inet"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        let lines = session.lines("before") + session.lines("after")
        #expect(native.stdout.hasSuffix("done\n"))
        #expect(lines.joined(separator: "\n") + "\n" == native.stdout)
    }
}

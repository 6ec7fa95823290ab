import Foundation
import Testing

/// memfd_create and file seals: the cases fixture against a native run, and
/// a memfd with data, a shared mapping and seals across a checkpoint.
@Suite struct MemfdTests {
    @Test func memfdCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("memfd_cases")
        let native = try Fixtures.runNatively("memfd_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }

    /// Checkpointed after "ready": the restored memfd has the same bytes
    /// (checksum), seals and name, its mapping still shares pages with
    /// write(2), and new memfds work on the restored kernel.
    @Test func aMemfdWithDataSurvivesACheckpoint() throws {
        let native = try Fixtures.runNatively("ckpt_memfd")
        let session = try CheckpointSession(["/bin/ckpt_memfd"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        let lines = session.lines("before") + session.lines("after")
        #expect(lines.joined(separator: "\n") + "\n" == native.stdout)
        #expect(native.stdout.contains("name: /memfd:kept (deleted)\n"))
    }
}

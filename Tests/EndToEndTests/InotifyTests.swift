import Foundation
import Testing

/// inotify on changes made inside the sandbox: the cases fixture against a
/// native run on the container's /tmp (tmpfs) and on its root (a host
/// directory), and an instance across a checkpoint.
@Suite struct InotifyTests {
    @Test func inotifyCasesMatchANativeRun() throws {
        try SyscallFixtureTests.expectMatchesNativeRun("inotify_cases")
    }

    /// The same cases in a directory of the root filesystem, a host
    /// directory: the Sentry reports the changes it makes there. Without
    /// hard links: hostfs gives each name of a host file its own inode.
    @Test func inotifyCasesOnAHostDirectoryMatchANativeRun() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("inotify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let native = try Fixtures.runNatively("inotify_cases", [scratch.path, "no-links"])
        let sandbox = try SandboxRun(["/bin/inotify_cases", "/work", "no-links"], start: false)
        try sandbox.makeRootfsWritable(directory: "work")
        try FileManager.default.copyItem(atPath: try Fixtures.binary("inotify_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/inotify_cases")
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

extension InotifyTests {
    /// Checkpointed with five events queued and unread (a rename's pair
    /// among them): after the restore they are read first, in order, with
    /// matching cookies, and the watches still report changes.
    @Test func queuedEventsSurviveACheckpoint() throws {
        let (output, native) = try CheckpointSession.outputAcrossCheckpoint("ckpt_inotify")
        #expect(output == native)
        #expect(native.contains("cookie same name renamed\n"))
    }
}

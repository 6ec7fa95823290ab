import Foundation
import Testing

/// A checkpoint cut short by SIGKILL of the process that writes the image
/// (the sandbox) must leave nothing that restores or looks like an image,
/// and its leftovers must not stop a later checkpoint to the same path;
/// SIGKILL of the CLI that asked for it must not cut the save short.
@Suite(.serialized) struct CheckpointKillTests {
    /// Enough touched memory that a zstd save takes a moment even on a fast machine.
    static let touched = ["/bin/ckpt_touch", "384"]

    @Test func aSandboxKilledMidCheckpointLeavesNoImageAndALaterCheckpointSucceeds() throws {
        let session = try CheckpointSession(Self.touched)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("ckpt_touch"),
                                         toPath: session.bundle + "/rootfs/bin/ckpt_touch")
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before", timeout: 120)
        let sandbox = try session.sandboxPID("c1")

        let checkpoint = try session.launch(["checkpoint", "--compression", "zstd", "--image-path",
                                             session.path("image"), "c1"], output: "checkpoint")
        let caught = try waitForPagesBeingWritten(session, checkpoint: checkpoint)
        #expect(kill(sandbox, SIGKILL) == 0)
        let status = checkpoint.wait()
        try #require(caught, "the checkpoint finished before it could be killed: \(session.errors(of: "checkpoint"))")
        #expect(status != 0, "the checkpoint cannot succeed without its sandbox")
        try waitUntilGone(sandbox)

        #expect(!FileManager.default.fileExists(atPath: session.path("image")), "no image at the final name")
        for leftover in try temporaries(session) {
            let described = try session.runsc("statefile", session.path(leftover))
            #expect(described.isCleanError, "statefile must refuse \(leftover): \(described.stdout)")
        }
        let restored = try session.restoreDetached("r1", image: "image", output: "r1")
        #expect(restored.status == 1, "\(restored.stderr)")
        #expect(!FileManager.default.fileExists(atPath: session.workspace.stateRoot + "/r1"))
        #expect(try session.runsc("delete", "--force", "c1").status == 0)

        try session.runDetached("c2", output: "second")
        try session.waitForLines(1, in: "second", timeout: 120)
        let again = try session.checkpoint("c2", image: "image", "--compression", "zstd")
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try session.runsc("statefile", session.path("image")).status == 0)
        #expect(try temporaries(session).isEmpty, "the killed writer's temporary directory is removed")
        let resumed = try session.restoreDetached("c3", image: "image", output: "third")
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try session.waitForLines(1, in: "third", timeout: 120)
        #expect(session.lines("third").first?.hasPrefix("tick") == true, "\(session.lines("third"))")
        #expect(try session.runsc("kill", "c3", "KILL").status == 0)
        #expect(try session.wait("c3") == 137)
    }

    /// The CLI only asks: the sandbox writes the image, so killing the CLI
    /// midway neither stops the save nor leaves a broken image.
    @Test func aCheckpointCommandKilledMidwayStillLeavesACompleteImage() throws {
        let session = try CheckpointSession(Self.touched)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("ckpt_touch"),
                                         toPath: session.bundle + "/rootfs/bin/ckpt_touch")
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before", timeout: 120)

        let checkpoint = try session.launch(["checkpoint", "--compression", "zstd", "--image-path",
                                             session.path("image"), "c1"], output: "checkpoint")
        let caught = try waitForPagesBeingWritten(session, checkpoint: checkpoint)
        #expect(kill(checkpoint.pid, SIGKILL) == 0)
        _ = checkpoint.wait()
        try #require(caught, "the checkpoint finished before it could be killed: \(session.errors(of: "checkpoint"))")

        let deadline = Date().addingTimeInterval(120)
        while try session.status("c1") != "stopped" {
            guard Date() < deadline else { throw SetupError("c1 never stopped after its checkpoint") }
            usleep(20_000)
        }
        #expect(try session.runsc("statefile", session.path("image")).status == 0)
        #expect(try temporaries(session).isEmpty)
        let restored = try session.restoreDetached("c2", image: "image", output: "after")
        #expect(restored.status == 0, "\(restored.stderr)")
        try session.waitForLines(1, in: "after", timeout: 120)
        #expect(session.lines("after").first?.hasPrefix("tick") == true, "\(session.lines("after"))")
        #expect(try session.runsc("kill", "c2", "KILL").status == 0)
        #expect(try session.wait("c2") == 137)
    }

    /// Polls (no timing assumption) until the sandbox is writing `pages.img`
    /// in its temporary directory; false if the checkpoint ended first.
    private func waitForPagesBeingWritten(_ session: CheckpointSession,
                                          checkpoint: CheckpointSession.Spawned) throws -> Bool {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            for name in try temporaries(session) {
                var info = stat()
                if stat(session.path(name) + "/pages.img", &info) == 0 && info.st_size > 0 { return true }
            }
            if FileManager.default.fileExists(atPath: session.path("image")) || hasExited(checkpoint.pid) { return false }
            usleep(1000)
        }
        return false
    }

    /// Whether `pid` is gone or a zombie (our own child stays one until waited for).
    private func hasExited(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[close...].dropFirst(2).first == "Z"
    }

    /// Waits until `pid` no longer exists, so a later writer sees its temporary directory as abandoned.
    private func waitUntilGone(_ pid: pid_t) throws {
        let deadline = Date().addingTimeInterval(30)
        while kill(pid, 0) == 0 {
            guard Date() < deadline else { throw SetupError("sandbox \(pid) still exists after SIGKILL") }
            usleep(10_000)
        }
    }

    /// `image.tmp-*` directories beside the image path.
    private func temporaries(_ session: CheckpointSession) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: session.workspace.path).filter { $0.hasPrefix("image.tmp-") }
    }
}

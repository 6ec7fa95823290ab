import Foundation
import Testing

/// Checkpoints in the middle of a process tree's life: a parent blocked in
/// wait4 on a running child with a zombie child not yet reaped, and a shell
/// pipeline with a slow producer. The restored run's output continues the
/// stopped one's and equals a straight run.
@Suite struct CheckpointProcessTests {
    @Test func aParentInWait4AndAZombieSurviveARestore() throws {
        let arguments = ["20", "100"]
        let native = try Fixtures.runNatively("unblocked_exec", [try Fixtures.binary("ckpt_children")] + arguments)
        let expected = native.stdout.split(separator: "\n").map(String.init)
        let session = try CheckpointSession(["/bin/ckpt_children"] + arguments)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(5, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
        #expect(expected.last == "zombie state -")
    }

    /// The parent waits for its vfork child's exec across the restore.
    @Test func aVforkParentWaitingForItsChildSurvivesARestore() throws {
        let arguments = ["12", "100", "vfork"]
        let native = try Fixtures.runNatively("unblocked_exec", [try Fixtures.binary("ckpt_children")] + arguments)
        let expected = native.stdout.split(separator: "\n").map(String.init)
        let session = try CheckpointSession(["/bin/ckpt_children"] + arguments)
        try session.runDetached("v1", output: "before")
        try session.waitForLines(4, in: "before")
        let saved = try session.checkpoint("v1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("v2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
        #expect(expected.suffix(2) == ["parent back from vfork", "vfork child exited 5"])
    }

    @Test func aPipelineWithASlowProducerSurvivesARestore() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "{ seq 1 100000; sleep 1; seq 100001 200000; sleep 1; seq 200001 300000; } | grep 7 | wc -l"
        let native = try Fixtures.runNatively("unblocked_exec", [Fixtures.busybox, "sh", "-c", script])
        let session = try CheckpointSession(["/bin/busybox", "sh", "-c", script])
        try FileManager.default.copyItem(atPath: Fixtures.busybox, toPath: session.bundle + "/rootfs/bin/busybox")
        try session.runDetached("p1", output: "before")
        usleep(1_500_000)
        let saved = try session.checkpoint("p1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(session.read("before").isEmpty)
        let status = try session.restore("p2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.read("after") == native.stdout)
        #expect(native.stdout == "\(Self.countContainingSeven(upTo: 300_000))\n")
    }

    static func countContainingSeven(upTo limit: Int) -> Int {
        (1...limit).filter { String($0).contains("7") }.count
    }
}

import Foundation
import Testing

/// A restore with another bundle than the checkpoint's (a migration's is at
/// another path, on another host): what the image cannot do without is
/// refused by name, every other difference is logged by name, and the
/// image's process runs.
@Suite struct RestoreBundleTests {
    @Test func aBundleWithAnotherProcessRestoresTheImagesAndLogsWhatDiffers() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "sleep", "2000"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)

        let other = try Self.copyBundle(session, as: "other")
        try SandboxRun.setProcess(in: other + "/config.json", args: ["/bin/ckpt_block", "pipe"],
                                  env: ["PATH=/usr/local/bin:/usr/bin:/bin", "EXTRA=1"], user: 0)
        let status = try session.launch(["--log", session.path("restore.log"), "restore", "--image-path",
                                         session.path("image"), "--bundle", other, "c2"], output: "after").wait()
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("after") == ["slept"], "the image's process runs")
        let log = session.read("restore.log")
        #expect(log.contains("the bundle differs from the checkpoint's"), "\(log)")
        #expect(log.contains("process.args [\"/bin/ckpt_block\", \"sleep\", \"2000\"] → [\"/bin/ckpt_block\", \"pipe\"]"), "\(log)")
        #expect(log.contains("process.env EXTRA"), "\(log)")

        let same = try session.launch(["--log", session.path("same.log"), "restore", "--image-path",
                                       session.path("image"), "--bundle", session.bundle, "c3"], output: "same").wait()
        #expect(same == 0)
        #expect(!session.read("same.log").contains("differs"), "\(session.read("same.log"))")

        // /tmp is mounted only when the spec asks (as runc): a bundle without it differs.
        let bare = try Self.copyBundle(session, as: "bare")
        try Self.editSpec(bare + "/config.json") { spec in
            spec["mounts"] = (spec["mounts"] as? [[String: Any]] ?? []).filter { $0["destination"] as? String != "/tmp" }
        }
        let withoutTmp = try session.launch(["--log", session.path("bare.log"), "restore", "--image-path",
                                             session.path("image"), "--bundle", bare, "c4"], output: "bare.out").wait()
        #expect(withoutTmp == 0)
        #expect(session.read("bare.log").contains("mount /tmp (tmpfs) is not in the bundle"), "\(session.read("bare.log"))")
    }

    @Test func aHostDirectoryTheImageMountedMustBeBoundAtTheSamePlace() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "sleep", "2000"])
        for name in ["data1", "data2"] {
            try FileManager.default.createDirectory(atPath: session.path(name), withIntermediateDirectories: true)
        }
        try Self.editSpec(session.bundle + "/config.json") { spec in
            var mounts = spec["mounts"] as? [[String: Any]] ?? []
            mounts.append(["destination": "/data", "type": "bind", "source": session.path("data1"), "options": ["rbind"]])
            spec["mounts"] = mounts
        }
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)

        let without = try Self.copyBundle(session, as: "without")
        try Self.editSpec(without + "/config.json") { spec in
            spec["mounts"] = (spec["mounts"] as? [[String: Any]] ?? []).filter { $0["destination"] as? String != "/data" }
        }
        let refused = try session.launch(["restore", "--image-path", session.path("image"), "--bundle", without, "c2"],
                                         output: "refused.out").wait()
        let errors = session.errors(of: "refused.out")
        #expect(refused == 1)
        #expect(errors.contains("/data") && errors.contains("mounts no host directory at /data"), "\(errors)")

        let moved = try Self.copyBundle(session, as: "moved")
        try Self.editSpec(moved + "/config.json") { spec in
            spec["mounts"] = (spec["mounts"] as? [[String: Any]] ?? []).map { mount in
                var mount = mount
                if mount["destination"] as? String == "/data" { mount["source"] = session.path("data2") }
                return mount
            }
        }
        let status = try session.launch(["restore", "--image-path", session.path("image"), "--bundle", moved, "c3"],
                                        output: "moved.out").wait()
        #expect(status == 0, "a migration binds the same place from another host path: \(session.errors(of: "moved.out"))")
        #expect(session.lines("moved.out") == ["slept"])
    }

    /// A copy as a migration makes one (`cp -a`, `rsync -a`, the same image
    /// layers): files a program maps are reopened by a restore, which finds
    /// them unchanged by size and modification time.
    static func copyBundle(_ session: CheckpointSession, as name: String) throws -> String {
        let copy = session.path(name)
        let copied = try Fixtures.run("/bin/cp", ["-a", session.bundle, copy])
        guard copied.status == 0 else { throw SetupError("cp -a \(session.bundle): \(copied.stderr)") }
        return copy
    }

    static func editSpec(_ path: String, _ body: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard var spec = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SetupError("\(path) is not a JSON object")
        }
        body(&spec)
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
    }
}

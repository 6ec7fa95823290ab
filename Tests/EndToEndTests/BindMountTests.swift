import Foundation
import Testing

/// Bind mounts of single host files, as Docker and podman always add them
/// (/etc/resolv.conf, /etc/hosts): read-only and read-write, onto a file the
/// rootfs has or lacks, kept across a checkpoint, and a missing source named.
@Suite struct BindMountTests {
    /// Adds `mounts` (destination, host source, options) to the bundle's spec.
    static func addBindMounts(_ mounts: [(String, String, [String])], to bundle: String) throws {
        let path = bundle + "/config.json"
        guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
            as? [String: Any] else { throw SetupError("config.json is not an object") }
        var list = spec["mounts"] as? [[String: Any]] ?? []
        for (destination, source, options) in mounts {
            list.append(["destination": destination, "type": "bind", "source": source, "options": ["rbind"] + options])
        }
        spec["mounts"] = list
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
    }

    @Test func singleFilesAreMountedReadOnlyAndReadWrite() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "read r </etc/resolv.conf; read h </etc/hosts; echo \"$r|$h\"; echo 10.0.0.2 added >>/etc/hosts; "
            + "echo changed >/etc/resolv.conf || echo refused; echo /etc/*"
        let sandbox = try SandboxRun(["/bin/busybox", "sh", "-c", script], files: ["etc/hosts": "rootfs hosts\n"],
                                     busybox: true, start: false)
        let resolv = sandbox.workspace.path + "/resolv.conf", hosts = sandbox.workspace.path + "/hosts"
        try Data("nameserver 10.0.0.1\n".utf8).write(to: URL(fileURLWithPath: resolv))
        try Data("127.0.0.1 localhost\n".utf8).write(to: URL(fileURLWithPath: hosts))
        try Self.addBindMounts([("/etc/resolv.conf", resolv, ["ro"]), ("/etc/hosts", hosts, ["rw"])], to: sandbox.bundle)
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "nameserver 10.0.0.1|127.0.0.1 localhost\nrefused\n/etc/hosts /etc/resolv.conf\n")
        #expect(result.stderr.contains("Read-only file system"), "\(result.stderr)")
        #expect(try String(contentsOfFile: hosts, encoding: .utf8) == "127.0.0.1 localhost\n10.0.0.2 added\n")
        #expect(try String(contentsOfFile: resolv, encoding: .utf8) == "nameserver 10.0.0.1\n")
        #expect(try String(contentsOfFile: sandbox.bundle + "/rootfs/etc/hosts", encoding: .utf8) == "rootfs hosts\n")
        #expect(!FileManager.default.fileExists(atPath: sandbox.bundle + "/rootfs/etc/resolv.conf"),
                "the rootfs on the host is not touched")
    }

    /// Hard links in a bind-mounted host directory are one file, as in a
    /// native run on a host directory: one inode number and link count, a
    /// chmod through one name seen through the others, MAP_SHARED pages
    /// and locks shared between the names.
    @Test func hardLinksOnAHostDirectoryAreOneFile() throws {
        try Self.matchesANativeRunOnAHostDirectory("hostfs_hardlinks", in: "/data")
    }

    /// MAP_SHARED mappings of a file on a bind-mounted host directory, and
    /// of a tmpfs file, are coherent with read and write of it as in a native
    /// run on a host directory: one copy of the bytes, whichever way they go.
    @Test(arguments: ["/data", "/tmp"]) func sharedMappingsAreCoherentWithReadAndWrite(directory: String) throws {
        try Self.matchesANativeRunOnAHostDirectory("mmap_shared_coherence", in: directory)
    }

    /// Runs fixture `name` with the directory `argument` (`/data`, a
    /// bind-mounted host directory, or another) against a native run given
    /// a host directory, expecting the same output ending in "done".
    static func matchesANativeRunOnAHostDirectory(_ name: String, in argument: String) throws {
        let sandbox = try SandboxRun(["/bin/" + name, argument], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name),
                                         toPath: sandbox.bundle + "/rootfs/bin/" + name)
        let data = sandbox.workspace.path + "/data", nativeData = sandbox.workspace.path + "/native-data"
        for directory in [data, nativeData] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        try Self.addBindMounts([("/data", data, ["rw"])], to: sandbox.bundle)
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively(name, [nativeData])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
    }

    @Test func aMissingSourceIsNamedWithItsMount() throws {
        let sandbox = try SandboxRun(["/bin/hello"], start: false)
        let missing = sandbox.workspace.path + "/no-such-resolv.conf"
        try Self.addBindMounts([("/etc/resolv.conf", missing, ["ro"])], to: sandbox.bundle)
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.isCleanError, "\(result.stderr)")
        #expect(result.stderr.contains("/etc/resolv.conf") && result.stderr.contains(missing)
            && result.stderr.contains("No such file or directory"), "\(result.stderr)")
    }

    /// A file open through a single-file mount is reopened at restore.
    @Test func aFileOpenThroughASingleFileMountIsReopenedAfterRestore() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "hold", "/etc/hosts"])
        let hosts = session.path("hosts")
        try Data("127.0.0.1 localhost\n".utf8).write(to: URL(fileURLWithPath: hosts))
        try Self.addBindMounts([("/etc/hosts", hosts, ["ro"])], to: session.bundle)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") == ["ready"])
        #expect(session.lines("after") == ["rest: 0.0.1 localhost"])
    }

    /// An image names the host file; only a bundle that mounts that file gets it.
    @Test func aRestoreWhoseBundleDoesNotMountTheFileIsRefused() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "hold", "/etc/hosts"])
        let hosts = session.path("hosts")
        try Data("127.0.0.1 localhost\n".utf8).write(to: URL(fileURLWithPath: hosts))
        let original = try Data(contentsOf: URL(fileURLWithPath: session.bundle + "/config.json"))
        try Self.addBindMounts([("/etc/hosts", hosts, ["ro"])], to: session.bundle)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        try original.write(to: URL(fileURLWithPath: session.bundle + "/config.json"))
        let result = try session.restoreDetached("c2", image: "image", output: "after")
        #expect(result.status == 1)
        #expect(result.stderr.contains(hosts) && result.stderr.contains("the bundle's spec does not"), "\(result.stderr)")
    }
}

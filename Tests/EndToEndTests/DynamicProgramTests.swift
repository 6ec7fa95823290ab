import Foundation
import Testing

/// Dynamically linked programs: ld.so named by PT_INTERP, loaded by the
/// Sentry beside the executable, and the host's own libraries and Debian
/// programs from read-only bind mounts of /usr, /lib, /lib64 and /etc, each
/// compared with a native run.
@Suite struct DynamicProgramTests {
    static let hostDirectories = ["/usr", "/lib", "/lib64", "/etc"]

    /// A sandbox running `args` with the host's system directories bind-mounted read-only.
    static func runWithHostSystem(_ args: [String], copying fixture: String? = nil,
                                  busybox: Bool = false) throws -> RunscProcess.Result {
        let sandbox = try SandboxRun(args, busybox: busybox, start: false)
        if let fixture {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(fixture),
                                             toPath: sandbox.bundle + "/rootfs/bin/" + fixture)
        }
        let mounts = hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }.map { ($0, $0, ["ro"]) }
        try BindMountTests.addBindMounts(mounts, to: sandbox.bundle)
        return try sandbox.start().finish(timeout: 120)
    }

    @Test func aDynamicFixtureThatDlopensLibmMatchesANativeRun() throws {
        let result = try Self.runWithHostSystem(["/bin/dynamic_dlopen"], copying: "dynamic_dlopen")
        let native = try Fixtures.runNatively("dynamic_dlopen")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    @Test(arguments: [
        ["/usr/bin/cat", "/etc/debian_version"],
        ["/usr/bin/head", "-n", "3", "/etc/passwd"],
        ["/usr/bin/wc", "/etc/passwd"],
        ["/usr/bin/sha256sum", "/etc/debian_version"],
        ["/usr/bin/sort", "/etc/passwd"],
        ["/usr/bin/ls", "-l", "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules"],
        ["/usr/bin/ls", "-l", "/usr/share/doc/coreutils"],
        ["/usr/bin/date", "-u", "-d", "@0"],
        ["/usr/bin/find", "/usr/share/doc/coreutils", "-name", "NEWS.gz"],
        ["/usr/bin/du", "-s", "/usr/share/doc/coreutils"],
        ["/usr/bin/perl", "-e", "print join(',', map { $_ * $_ } 1..5), \"\\n\""],
        ["/usr/bin/sqlite3", ":memory:", "select 1+1"],
        ["/usr/bin/python3", "-c", "import json,hashlib; print(json.dumps({'h': hashlib.sha256(b'x').hexdigest()}))"],
    ])
    func aDebianProgramMatchesANativeRun(_ args: [String]) throws {
        try #require(FileManager.default.isExecutableFile(atPath: args[0]), "\(args[0]) is not installed")
        let result = try Self.runWithHostSystem(args)
        let native = try Fixtures.run(args[0], Array(args.dropFirst()))
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// execve of a dynamic program from a running static one (a shell's exec)
    /// goes through the same loader as the container's first process.
    @Test func aStaticShellExecsADynamicProgram() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox)")
        let result = try Self.runWithHostSystem(["/bin/busybox", "sh", "-c", "exec /usr/bin/wc -l /etc/passwd"],
                                                busybox: true)
        let native = try Fixtures.run("/usr/bin/wc", ["-l", "/etc/passwd"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// python3 hashing with a line every 80 ms, checkpointed after four lines
    /// and restored: the lines before and after are those of a native run.
    @Test func python3CheckpointedMidWorkContinuesAfterRestore() throws {
        let python = "/usr/bin/python3"
        try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) is not installed")
        let script = "import hashlib,time\nh=b''\nfor i in range(16):\n"
            + "    for _ in range(2000): h=hashlib.sha256(h).digest()\n"
            + "    print(i, h.hex()[:16], flush=True); time.sleep(0.08)\n"
        let native = try Fixtures.run(python, ["-c", script])
        #expect(native.status == 0)
        let session = try CheckpointSession([python, "-c", script])
        let mounts = Self.hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }.map { ($0, $0, ["ro"]) }
        try BindMountTests.addBindMounts(mounts, to: session.bundle)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(4, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(!session.lines("after").isEmpty, "the checkpoint came before the end")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
    }
}

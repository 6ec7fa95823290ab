import Foundation
import Testing

/// execve and execveat inside the sandbox, compared with native runs: a
/// program exec'ing itself by FD, a `#!` busybox script with an argument,
/// the failures (ENOENT, EACCES, ENOEXEC, E2BIG, ELOOP), close-on-exec seen
/// in /proc/self/fd; busybox sh's `exec`; a checkpoint after an exec.
@Suite struct ExecTests {
    @Test func execCasesMatchANativeRun() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("exec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("exec_cases", [scratch])
        #expect(native.status == 0, "\(native.stderr)")

        let result = try Self.run(["/bin/exec_cases", "/scratch"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.contains("chain ran: s1 s2"), "\(result.stdout)")
    }

    /// The default spec mounts /dev/shm noexec: nothing on it runs (the
    /// host's own /dev/shm may not be noexec, so no native run here).
    @Test func aScriptOnANoexecMountIsEACCES() throws {
        let result = try Self.run(["/bin/exec_cases", "noexec", "/dev/shm"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "noexec mount: -1 Permission denied\n")
    }

    /// Runs exec_cases with busybox and a writable root with a /scratch directory.
    static func run(_ args: [String]) throws -> RunscProcess.Result {
        let sandbox = try SandboxRun(args, files: ["scratch/.keep": ""], busybox: true, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("exec_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/exec_cases")
        let configPath = sandbox.bundle + "/config.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        guard var spec = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SetupError("config.json is not an object")
        }
        spec["root"] = ["path": "rootfs", "readonly": false]
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: configPath))
        return try sandbox.start().finish(timeout: 60)
    }

    /// Exec takes a host program's bytes from the Sentry's file cache: four
    /// processes exec'ing one settled program at once all run it (one reads
    /// it while the others wait for that read), and the program rewritten in
    /// place (the same inode) between two execs runs as rewritten, not as the
    /// copy cached of its old version. Compared with native runs of the two.
    @Test func concurrentExecsOfOneProgramAndARewrittenProgramMatchNativeRuns() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "for i in 1 2 3 4; do /bin/prog & done; wait; "
            + "/bin/busybox cat /bin/exit_code > /bin/prog; /bin/prog 7; echo $?"
        let sandbox = try SandboxRun(["/bin/busybox", "sh", "-c", script], busybox: true, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("hello"), toPath: sandbox.bundle + "/rootfs/bin/prog")
        try sandbox.makeRootfsWritable(directory: "bin")
        // The cache keeps only a program unchanged for longer than its settle time (2 s).
        sleep(3)
        let result = try sandbox.start().finish(timeout: 60)
        let hello = try Fixtures.runNatively("hello"), rewritten = try Fixtures.runNatively("exit_code", ["7"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == String(repeating: hello.stdout, count: 4) + rewritten.stdout + "\(rewritten.status)\n",
                "\(result.stderr)")
    }

    /// The container's process may itself be a `#!` script: the Loader's
    /// init goes through the same loader as execve.
    @Test func aScriptIsTheContainersProcess() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "#!/bin/busybox sh\necho \"${0##*/} $# $1\"\n"
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("exec-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Data(script.utf8).write(to: URL(fileURLWithPath: scratch + "/init.sh"))
        chmod(scratch + "/init.sh", 0o755)
        let native = try Fixtures.run(scratch + "/init.sh", ["one arg"])
        let result = try SandboxRun(["/bin/init.sh", "one arg"], files: ["bin/init.sh": script],
                                    executable: ["bin/init.sh"], busybox: true).result
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout == "init.sh 1 one arg\n")
    }

    @Test func busyboxShellExecsAnApplet() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "exec /bin/busybox echo hi"
        let native = try Fixtures.run(Fixtures.busybox, ["sh", "-c", script])
        let result = try SandboxRun(["/bin/busybox", "sh", "-c", script], busybox: true).result
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout == "hi\n")
    }

    /// The program the container runs after an exec is checkpointed and
    /// restored: its new memory, stub and registers are what was saved.
    @Test func aProgramStartedByExecRestoresWhereItStopped() throws {
        let expected = try CheckpointTests.straightRun()
        let session = try CheckpointSession(["/bin/exec_then"] + CheckpointTests.counter)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("exec_then"),
                                         toPath: session.bundle + "/rootfs/bin/exec_then")
        try session.runDetached("c1", output: "before")
        try session.waitForLines(5, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
    }
}

import Foundation
import Testing

/// podman (Debian 12's 4.3.1, with conmon) drives our runsc as its OCI runtime
/// (`podman --runtime runsc`), on an image imported from a rootfs tarball of
/// busybox and ckpt_counter, whose lines are compared with a native run's:
/// across a stop, a checkpoint, a restore or an import the output continues
/// where it was. podman and criu (podman checks criu's version before a
/// checkpoint) are installed with apt-get when missing; when that fails the
/// suite fails saying so, unless RUNSC_SKIP_PODMAN=1.
/// `podman top` with psgo's descriptors lists nothing (podman reads /proc
/// where the PID file's process is, which shows no process), as with gVisor.
@Suite(.serialized)
struct PodmanTests {
    static let image = "localhost/runsc-e2e-podman:latest"
    /// ckpt_counter's arguments: many lines, 100 ms apart, 1 MiB touched.
    static let counter = ["/bin/ckpt_counter", "3000", "100", "1"]

    /// Whether podman can be used; records why not unless RUNSC_SKIP_PODMAN=1.
    static let ready: Bool = {
        do {
            try installIfMissing()
            try importImage()
            return true
        } catch {
            return false
        }
    }()

    static func available() -> Bool {
        if ready { return true }
        let skip = ProcessInfo.processInfo.environment["RUNSC_SKIP_PODMAN"] == "1"
        let reason = (try? setupProblem()) ?? "unknown"
        if !skip {
            Issue.record("podman cannot be used here (\(reason)); set RUNSC_SKIP_PODMAN=1 to skip the podman suite")
        }
        return false
    }

    private static func setupProblem() throws -> String {
        for tool in ["/usr/bin/podman", "/usr/sbin/criu"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing and `apt-get install -y podman criu` did not install it"
        }
        return "importing the image failed"
    }

    private static func installIfMissing() throws {
        let missing = ["/usr/bin/podman", "/usr/sbin/criu"].contains { !FileManager.default.isExecutableFile(atPath: $0) }
        guard missing else { return }
        let installed = try Fixtures.run("/usr/bin/env", ["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                                                          "podman", "criu"])
        guard installed.status == 0 else { throw SetupError("apt-get install podman criu: \(installed.stderr)") }
    }

    /// A rootfs of busybox and ckpt_counter, tarred and `podman import`ed.
    private static func importImage() throws {
        let workspace = try Workspace()
        let rootfs = workspace.path + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: rootfs + "/tmp", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for fixture in ["ckpt_counter", "tty_jobctl"] {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(fixture), toPath: rootfs + "/bin/" + fixture)
        }
        // `podman top` with ps(1)'s options runs `ps` in the container.
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/ps", withDestinationPath: "busybox")
        let tarball = workspace.path + "/rootfs.tar"
        let tar = try Fixtures.run("/bin/tar", ["-C", rootfs, "-cf", tarball, "."])
        guard tar.status == 0 else { throw SetupError("tar: \(tar.stderr)") }
        let imported = try Fixtures.run("/usr/bin/podman", ["import", "-q", tarball, image])
        guard imported.status == 0 else { throw SetupError("podman import: \(imported.stderr)") }
    }

    static func podman(_ arguments: String...) throws -> RunscProcess.Result {
        try podman(arguments)
    }

    /// Through a shell that closes every FD above stderr first: Foundation's Process waits for a
    /// descriptor it passes to close, and conmon, which outlives `podman run -d`, would hold it.
    static func podman(_ arguments: [String]) throws -> RunscProcess.Result {
        let closeAndRun = "for fd in /proc/$$/fd/*; do n=${fd##*/}; [ \"$n\" -gt 2 ] && eval \"exec $n>&-\"; done; exec /usr/bin/podman \"$@\""
        return try Fixtures.run("/bin/bash", ["-c", closeAndRun, "podman", "--runtime", try RunscProcess.binary()] + arguments)
    }

    /// A container name no other run of the suite uses.
    static func name(_ base: String) -> String { "runsc-e2e-\(base)-\(UInt32.random(in: 0...UInt32.max))" }

    /// The counter's lines as a native run prints them.
    static let nativeLines: [String] = {
        guard let result = try? Fixtures.runNatively("ckpt_counter", ["3000", "0", "1"]) else { return [] }
        return result.stdout.split(separator: "\n").map(String.init)
    }()

    /// The container's log lines, once it has at least `count` of them (a terminal's CR LF ends a line too).
    static func waitForLines(_ container: String, atLeast count: Int, timeout: Double = 30) throws -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let logs = try podman("logs", container)
            let lines = logs.stdout.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n").map(String.init)
            if lines.count >= count { return lines }
            guard Date() < deadline else {
                Issue.record("\(container) printed \(lines.count) lines in \(timeout) s, not \(count): \(logs.stderr)")
                return lines
            }
            usleep(100_000)
        }
    }

    /// Every line is the native run's line of the same number: nothing lost, repeated or changed.
    static func expectContinuous(_ lines: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!lines.isEmpty, sourceLocation: sourceLocation)
        #expect(Array(nativeLines.prefix(lines.count)) == lines, sourceLocation: sourceLocation)
    }

    static func exitCode(_ container: String) throws -> String {
        try podman("inspect", container, "--format", "{{.State.ExitCode}}").stdout
    }

    static func status(_ container: String) throws -> String {
        try podman("inspect", container, "--format", "{{.State.Status}}").stdout
    }

    @Test func runRemovePrintsWhatANativeRunPrintsWithItsStatus() throws {
        guard Self.available() else { return }
        let native = try Fixtures.run("/bin/busybox", ["echo", "hi"])
        let run = try Self.podman("run", "--rm", Self.image, "/bin/busybox", "echo", "hi")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == native.stdout)
        let failing = try Self.podman("run", "--rm", Self.image, "/bin/busybox", "sh", "-c", "exit 7")
        #expect(failing.status == 7, "\(failing.stderr)")
    }

    @Test func detachedRunLogsAndStopsWithSIGTERMsStatus() throws {
        guard Self.available() else { return }
        let name = Self.name("stop")
        defer { _ = try? Self.podman("rm", "-f", name) }
        let run = try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter)
        #expect(run.status == 0, "\(run.stderr)")
        Self.expectContinuous(try Self.waitForLines(name, atLeast: 3))
        let stop = try Self.podman("stop", name)
        #expect(stop.status == 0, "\(stop.stderr)")
        #expect(try Self.exitCode(name) == "143\n")
    }

    @Test func killWithUSR1EndsTheContainerWithThatSignal() throws {
        guard Self.available() else { return }
        let name = Self.name("kill")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        _ = try Self.waitForLines(name, atLeast: 1)
        let kill = try Self.podman("kill", "-s", "USR1", name)
        #expect(kill.status == 0, "\(kill.stderr)")
        let waited = try Self.podman("wait", name)
        #expect(waited.stdout == "138\n", "\(waited.stderr)")
    }

    @Test func removeForceEndsARunningContainer() throws {
        guard Self.available() else { return }
        let name = Self.name("rmf")
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        _ = try Self.waitForLines(name, atLeast: 1)
        let removed = try Self.podman("rm", "-f", name)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(try Self.podman("container", "exists", name).status == 1)
    }

    @Test func execRunsInTheContainerWithTheStatusOfTheExecdProcess() throws {
        guard Self.available() else { return }
        let name = Self.name("exec")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        let before = try Self.waitForLines(name, atLeast: 2).count
        let native = try Fixtures.run("/bin/busybox", ["echo", "hi"])
        let echo = try Self.podman("exec", name, "/bin/busybox", "echo", "hi")
        #expect(echo.status == 0, "\(echo.stderr)")
        #expect(echo.stdout == native.stdout)
        let failing = try Self.podman("exec", name, "/bin/busybox", "sh", "-c", "exit 3")
        #expect(failing.status == 3, "\(failing.stderr)")
        // The exec'd process sees init, and init goes on printing.
        let ps = try Self.podman("exec", name, "/bin/busybox", "ps", "-o", "pid,comm")
        #expect(ps.stdout.contains("ckpt_counter"), "\(ps.stdout) \(ps.stderr)")
        #expect(try Self.status(name) == "running\n")
        Self.expectContinuous(try Self.waitForLines(name, atLeast: before + 3))
    }

    @Test func topListsTheContainersProcessesAndNoneOfTheHost() throws {
        guard Self.available() else { return }
        let name = Self.name("top")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        _ = try Self.waitForLines(name, atLeast: 1)
        // ps(1)'s options: podman runs ps in the container (an exec), which reads the Sentry's /proc.
        let ps = try Self.podman("top", name, "-o", "pid,comm")
        #expect(ps.status == 0, "\(ps.stderr)")
        let rows = ps.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first == ["PID", "COMMAND"], "\(ps.stdout)")
        #expect(rows.dropFirst().first == ["1", "ckpt_counter"], "\(ps.stdout)")
        // psgo's descriptors read /proc where the PID file's process is: it shows nothing of the host.
        let psgo = try Self.podman("top", name)
        #expect(psgo.status == 0, "\(psgo.stderr)")
        #expect(psgo.stdout.split(separator: "\n").count == 1, "only the header: \(psgo.stdout)")
    }

    /// tty_jobctl natively as a session leader on a pty it controls: script(1) gives it one; every
    /// signal at its default action, as a container's init has them (the test runner ignores some).
    /// script runs the command with `$SHELL -c`: `exec` keeps it the session leader whatever that
    /// shell is (dash, CI's /bin/sh, forks a child for a lone command; bash does not).
    static func nativeTerminalRun() throws -> String {
        let native = try Fixtures.run("/usr/bin/env", ["--default-signal", "/usr/bin/script", "-qec",
                                                       "exec " + (try Fixtures.binary("tty_jobctl")), "/dev/null"])
        #expect(native.status == 0, "\(native.stderr)")
        return native.stdout
    }

    @Test func runWithATerminalHasJobControlAsANativeSessionLeader() throws {
        guard Self.available() else { return }
        let run = try Self.podman("run", "--rm", "-t", Self.image, "/bin/busybox", "sh", "-c", "test -t 0 && echo tty")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "tty\r\n", "a terminal's output, onlcr's CR included")
        let jobControl = try Self.podman("run", "--rm", "-t", Self.image, "/bin/tty_jobctl")
        #expect(jobControl.status == 0, "\(jobControl.stderr)")
        let native = try Self.nativeTerminalRun()
        #expect(jobControl.stdout == native, "ours:\n\(jobControl.stdout)\nnative:\n\(native)")
        let noTerminal = try Self.podman("run", "--rm", Self.image, "/bin/busybox", "sh", "-c", "test -t 0 || echo none")
        #expect(noTerminal.stdout == "none\n", "\(noTerminal.stderr)")
    }

    @Test func execWithATerminalHasJobControlAsANativeSessionLeader() throws {
        guard Self.available() else { return }
        let name = Self.name("exect")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        let before = try Self.waitForLines(name, atLeast: 1).count
        let tty = try Self.podman("exec", "-t", name, "/bin/busybox", "sh", "-c", "test -t 0 && echo tty")
        #expect(tty.status == 0, "\(tty.stderr)")
        #expect(tty.stdout == "tty\r\n")
        let jobControl = try Self.podman("exec", "-t", name, "/bin/tty_jobctl")
        #expect(jobControl.status == 0, "\(jobControl.stderr)")
        let native = try Self.nativeTerminalRun()
        #expect(jobControl.stdout == native, "ours:\n\(jobControl.stdout)\nnative:\n\(native)")
        Self.expectContinuous(try Self.waitForLines(name, atLeast: before + 2))
    }

    /// ^C typed on podman's terminal (script(1) gives it one) reaches the shell's trap in the container.
    @Test func controlCOnTheTerminalInterruptsTheForegroundProcessGroup() throws {
        guard Self.available() else { return }
        let workspace = try Workspace()
        let session = workspace.path + "/session.sh"
        let shell = "trap 'echo got INT; exit 5' INT; echo ready; while :; do /bin/busybox sleep 1; done"
        try "exec /usr/bin/podman --runtime \(try RunscProcess.binary()) run -it --rm \(Self.image) /bin/busybox sh -c \"\(shell)\"\n"
            .write(toFile: session, atomically: true, encoding: .utf8)
        let typed = "(sleep 4; printf '\\003'; sleep 3) | /usr/bin/timeout 60 /usr/bin/env --default-signal /usr/bin/script -qec 'sh \(session)' /dev/null"
        let run = try Fixtures.run("/bin/bash", ["-c", typed])
        #expect(run.stdout.replacingOccurrences(of: "\r\n", with: "\n") == "ready\n^Cgot INT\n", "\(run.stderr)")
    }

    /// conmon gives `restore` a console socket of its own: the restored shell writes on a new terminal.
    @Test func checkpointAndRestoreOfAContainerWithATerminalReattachIt() throws {
        guard Self.available() else { return }
        let name = Self.name("ckptty")
        defer { _ = try? Self.podman("rm", "-f", name) }
        let loop = "i=0; while :; do i=$((i+1)); test -t 1 && echo \"tty $i\"; sleep 0.1; done"
        #expect(try Self.podman("run", "-d", "-t", "--name", name, Self.image, "/bin/busybox", "sh", "-c", loop).status == 0)
        _ = try Self.waitForLines(name, atLeast: 3)
        let checkpoint = try Self.podman("container", "checkpoint", name)
        #expect(checkpoint.status == 0, "\(checkpoint.stderr)")
        let saved = try Self.waitForLines(name, atLeast: 0).count
        let restore = try Self.podman("container", "restore", name)
        #expect(restore.status == 0, "\(restore.stderr)")
        let lines = try Self.waitForLines(name, atLeast: saved + 3)
        #expect(lines == (1...lines.count).map { "tty \($0)" }, "every line written on a terminal, none lost")
    }

    @Test func pauseHoldsTheOutputAndUnpauseContinuesIt() throws {
        guard Self.available() else { return }
        let name = Self.name("pause")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        _ = try Self.waitForLines(name, atLeast: 2)
        #expect(try Self.podman("pause", name).status == 0)
        #expect(try Self.status(name) == "paused\n")
        usleep(300_000)
        let held = try Self.waitForLines(name, atLeast: 0).count
        usleep(500_000)
        #expect(try Self.waitForLines(name, atLeast: 0).count == held, "a paused container prints nothing")
        #expect(try Self.podman("unpause", name).status == 0)
        Self.expectContinuous(try Self.waitForLines(name, atLeast: held + 3))
    }

    @Test func checkpointAndRestoreContinueTheOutput() throws {
        guard Self.available() else { return }
        let name = Self.name("ckpt")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        _ = try Self.waitForLines(name, atLeast: 3)
        let checkpoint = try Self.podman("container", "checkpoint", name)
        #expect(checkpoint.status == 0, "\(checkpoint.stderr)")
        #expect(try Self.status(name) == "exited\n")
        let saved = try Self.waitForLines(name, atLeast: 0).count
        let restore = try Self.podman("container", "restore", name)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try Self.status(name) == "running\n")
        Self.expectContinuous(try Self.waitForLines(name, atLeast: saved + 3))
    }

    @Test func checkpointLeavingItRunningContinuesTheOutput() throws {
        guard Self.available() else { return }
        let name = Self.name("leave")
        defer { _ = try? Self.podman("rm", "-f", name) }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        let before = try Self.waitForLines(name, atLeast: 2).count
        let checkpoint = try Self.podman("container", "checkpoint", "--leave-running", name)
        #expect(checkpoint.status == 0, "\(checkpoint.stderr)")
        #expect(try Self.status(name) == "running\n")
        Self.expectContinuous(try Self.waitForLines(name, atLeast: before + 3))
    }

    @Test func exportRemoveAndImportUnderAnotherNameContinuesTheOutput() throws {
        guard Self.available() else { return }
        let name = Self.name("export"), other = Self.name("other")
        let workspace = try Workspace()
        let archive = workspace.path + "/checkpoint.tar.gz"
        defer {
            _ = try? Self.podman("rm", "-f", name)
            _ = try? Self.podman("rm", "-f", other)
        }
        #expect(try Self.podman(["run", "-d", "--name", name, Self.image] + Self.counter).status == 0)
        _ = try Self.waitForLines(name, atLeast: 3)
        let export = try Self.podman("container", "checkpoint", "--export", archive, name)
        #expect(export.status == 0, "\(export.stderr)")
        let saved = try Self.waitForLines(name, atLeast: 0).count
        #expect(try Self.podman("rm", name).status == 0)
        let restore = try Self.podman("container", "restore", "--import", archive, "--name", other)
        #expect(restore.status == 0, "\(restore.stderr)")
        // The imported log may carry the exported one; either way it must run on past the checkpoint as one
        // unbroken stretch of the native run: a restore that started the program afresh would repeat line 0.
        let lines = try Self.waitForLines(other, atLeast: saved + 2)
        let first = try #require(lines.first.flatMap { Self.nativeLines.firstIndex(of: $0) })
        #expect(first <= saved, "no line lost across the export")
        #expect(first + lines.count > saved + 1, "the imported container printed past the checkpoint")
        #expect(Array(Self.nativeLines.dropFirst(first).prefix(lines.count)) == lines)
    }

    /// podman (cgroupfs manager) names the container's cgroup in cgroupsPath; the sandbox joins it with
    /// `-m` and `--pids-limit` written, `podman stats` counts its processes there, and `rm` removes it.
    @Test func theContainersCgroupHasItsLimitsAndStatsCountIt() throws {
        guard Self.available() else { return }
        let name = Self.name("cgroup")
        defer { _ = try? Self.podman("rm", "-f", name) }
        let run = try Self.podman(["run", "-d", "--name", name, "-m", "256m", "--pids-limit", "50", Self.image] + Self.counter)
        #expect(run.status == 0, "\(run.stderr)")
        _ = try Self.waitForLines(name, atLeast: 1)
        let configPath = try Self.podman("inspect", name, "--format", "{{.OCIConfigPath}}").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any]
        let cgroupsPath = try #require((config?["linux"] as? [String: Any])?["cgroupsPath"] as? String)
        let memory = CgroupTests.directory(cgroupsPath, controller: "memory")
        let pids = CgroupTests.directory(cgroupsPath, controller: "pids")
        let memoryFile = CgroupTests.unified ? "memory.max" : "memory.limit_in_bytes"
        #expect(CgroupTests.read(memory + "/" + memoryFile) == String(256 << 20))
        #expect(CgroupTests.read(pids + "/pids.max") == "50")
        let members = CgroupTests.read(pids + "/cgroup.procs")?.split(separator: "\n") ?? []
        #expect(!members.isEmpty, "nothing of the container is in \(pids)")
        let stats = try Self.podman("stats", "--no-stream", "--format", "{{.PIDs}}", name)
        #expect(stats.status == 0, "\(stats.stderr)")
        #expect((Int(stats.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= members.count, "\(stats.stdout)")
        #expect(try Self.podman("rm", "-f", name).status == 0)
        #expect(!FileManager.default.fileExists(atPath: memory), "\(memory) is left after rm")
    }
}

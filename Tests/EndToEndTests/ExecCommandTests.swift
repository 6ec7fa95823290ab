import Foundation
import OCI
import Testing

/// A user's session with a running container: `runsc exec` starts more
/// processes in it (in the foreground and detached), `ps` lists them, `wait
/// --pid` and `kill --all` reach them, `pause`/`resume` stop and restart the
/// whole container, and exec works in a container restored from an image.
@Suite struct ExecCommandTests {
    /// A container whose init sleeps long enough for a test, started detached.
    static func running(_ id: String = "c1", init args: [String] = ["/bin/sleep_exit", "60000", "0"]) throws
        -> ContainerSession {
        let session = try ContainerSession(args)
        let status = try session.runsc(["run", "--detach", "--bundle", session.bundle, id],
                                       output: session.workspace.path + "/\(id).log")
        let log = (try? session.workspace.read("\(id).log")) ?? ""
        try #require(status == 0, "run --detach: \(log)")
        return session
    }

    /// Starts `runsc arguments...` with its stdout and stderr in the workspace's `output`, and returns at once.
    static func launch(_ session: ContainerSession, _ arguments: [String], output: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try RunscProcess.binary())
        process.arguments = ["--root", session.workspace.stateRoot] + arguments
        let path = session.workspace.path + "/" + output
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// `runsc exec -d --internal-pid-file F c1 spin`: the PID in the container the file got.
    static func spinDetached(_ session: ContainerSession) throws -> Int32 {
        let pidFile = session.workspace.path + "/spin.pid"
        let status = try session.runsc(["exec", "-d", "--internal-pid-file", pidFile, "c1", "spin"],
                                       output: session.workspace.path + "/spin.log")
        try #require(status == 0)
        return try #require(Int32(try session.workspace.read("spin.pid")))
    }

    @Test func execRunsAProgramWithTheOutputAndStatusOfANativeRun() throws {
        let session = try Self.running()
        let hello = try session.runsc("exec", "c1", "hello")
        let native = try Fixtures.runNatively("hello")
        #expect(hello.status == native.status, "\(hello.stderr)")
        #expect(hello.stdout == native.stdout)

        let exited = try session.runsc("exec", "c1", "/bin/exit_code", "42")
        #expect(exited.status == (try Fixtures.runNatively("exit_code", ["42"])).status)
        #expect(exited.stderr.isEmpty, "the process's status is runsc's, without a message")
        #expect(try session.state("c1").status == .running, "init runs on after an exec'd process ends")
    }

    @Test func aSignalToRunscExecGoesToTheProcessWhoseDeathIsRunscsStatus() throws {
        let session = try Self.running()
        let exec = try Self.launch(session, ["exec", "c1", "spin"], output: "exec.log")
        try session.waitFor("spinning", in: session.workspace.path + "/exec.log")
        kill(exec.processIdentifier, SIGTERM)
        exec.waitUntilExit()
        let said = try session.workspace.read("exec.log")
        #expect(exec.terminationStatus == 128 + SIGTERM, "\(said)")
        #expect(try session.state("c1").status == .running, "init did not get the signal")
    }

    @Test func execTakesItsEnvironmentDirectoryAndUserFromTheSpecOrTheOptions() throws {
        let session = try Self.running()
        let defaults = try session.runsc("exec", "c1", "exec_identity", "PATH", "HOME", "FOO")
        #expect(defaults.status == 0, "\(defaults.stderr)")
        #expect(defaults.stdout == "uid=0 gid=0\ncwd=/\nPATH=/bin\nHOME=/\nFOO=(unset)\n")

        let options = try session.runsc("exec", "--env", "FOO=bar", "--env", "PATH=/bin:/sbin", "--cwd", "/bin",
                                        "--user", "1000:100", "c1", "exec_identity", "PATH", "FOO")
        #expect(options.status == 0, "\(options.stderr)")
        #expect(options.stdout == "uid=1000 gid=100\ncwd=/bin\nPATH=/bin:/sbin\nFOO=bar\n")

        let process = Spec.Process(user: Spec.User(uid: 7, gid: 8), args: ["/bin/exec_identity", "ONLY"],
                                   env: ["ONLY=from-json"], cwd: "/bin")
        try JSONEncoder().encode(process).write(to: URL(fileURLWithPath: session.workspace.path + "/process.json"))
        let fromFile = try session.runsc("exec", "--process", session.workspace.path + "/process.json", "c1")
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        #expect(fromFile.stdout == "uid=7 gid=8\ncwd=/bin\nONLY=from-json\n")
    }

    @Test func aDetachedExecIsWaitedForByItsPIDAfterItExited() throws {
        let session = try Self.running()
        let pidFile = session.workspace.path + "/exec.pid"
        let output = session.workspace.path + "/exec.log"
        let status = try session.runsc(["exec", "--detach", "--internal-pid-file", pidFile, "c1", "sleep_exit", "100", "5"],
                                       output: output)
        #expect(status == 0)
        let pid = try #require(Int32(try session.workspace.read("exec.pid")))
        #expect(pid > 1, "an exec'd process is not init")
        try session.waitFor("finished", in: output)
        let waited = try session.runsc("wait", "--pid", String(pid), "c1")
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stdout == "{\"exitStatus\":5,\"id\":\"c1\"}\n")
        #expect(try session.workspace.read("exec.log") == "started\nfinished\n", "detach prints nothing of its own")

        let again = try session.runsc("wait", "--pid", String(pid), "c1")
        #expect(again.isCleanError)
        #expect(again.stderr.contains("no process \(pid) started by exec"), "\(again.stderr)")
    }

    @Test func eventsStatsReportsTheContainersMemoryCPUAndProcesses() throws {
        // ckpt_counter writes 16 MiB of its heap before its first line, then sums it at every line.
        let session = try Self.running(init: ["/bin/ckpt_counter", "100000", "50", "16"])
        try session.waitFor("\n", in: session.workspace.path + "/c1.log")
        let pid = try Self.spinDetached(session)
        let events = try session.runsc("events", "--stats", "c1")
        #expect(events.status == 0, "\(events.stderr)")
        let event = try #require(try JSONSerialization.jsonObject(with: Data(events.stdout.utf8)) as? [String: Any])
        #expect(event["type"] as? String == "stats")
        #expect(event["id"] as? String == "c1")
        let data = try #require(event["data"] as? [String: Any])
        let memory = try #require((data["memory"] as? [String: Any])?["usage"] as? [String: Any])
        let usage = try #require(memory["usage"] as? UInt64)
        #expect(usage >= 16 << 20 && usage < 64 << 20, "\(usage) bytes for a 16 MiB heap")
        let cpu = try #require((data["cpu"] as? [String: Any])?["usage"] as? [String: Any])
        let (total, user, kernel) = (cpu["total"] as? UInt64 ?? 0, cpu["user"] as? UInt64 ?? 0, cpu["kernel"] as? UInt64 ?? 0)
        #expect(total > 0 && total == user + kernel, "\(cpu)")
        #expect((data["pids"] as? [String: Any])?["current"] as? UInt64 == 2, "init and process \(pid)")

        let streamed = try Self.launch(session, ["events", "--interval", "100ms", "c1"], output: "events.log")
        defer { streamed.terminate() }
        try session.waitFor("\n{", in: session.workspace.path + "/events.log")
    }

    @Test func featuresPrintsTheOCIFeaturesDocument() throws {
        let result = try RunscProcess.run(["features"])
        #expect(result.status == 0, "\(result.stderr)")
        let features = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(features["ociVersionMin"] as? String == "1.0.0")
        #expect(features["ociVersionMax"] as? String == Spec.currentVersion)
        #expect((features["mountOptions"] as? [String])?.contains("ro") == true)
        let linux = try #require(features["linux"] as? [String: Any])
        #expect((linux["capabilities"] as? [String])?.first == "CAP_CHOWN")
        #expect((linux["namespaces"] as? [String])?.contains("pid") == true)
        let seccomp = try #require(linux["seccomp"] as? [String: Any])
        #expect(seccomp["enabled"] as? Bool == true)
        #expect((seccomp["actions"] as? [String])?.contains("SCMP_ACT_TRAP") == true)
        #expect((seccomp["operators"] as? [String])?.contains("SCMP_CMP_MASKED_EQ") == true)
        #expect((features["annotations"] as? [String: String])?["org.opencontainers.runc.checkpoint.enabled"] == "true")
    }

    @Test func psListsInitAndAnExecdProcess() throws {
        let session = try Self.running()
        let pid = try Self.spinDetached(session)

        let table = try session.runsc("ps", "c1")
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        // gVisor's tabwriter layout: cells padded to at least 10 columns, 3 spaces after the widest.
        #expect(lines.first?.hasPrefix("UID       PID       PPID      C         TTY       STIME     TIME ") == true,
                "\(table.stdout)")
        #expect(lines.first?.hasSuffix("   CMD") == true)
        let rows = lines.dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(rows.count == 2, "\(table.stdout)")
        #expect(rows.map { [$0[0], $0[1], $0[2], $0.last ?? ""] } == [["0", "1", "0", "sleep_exit"],
                                                                      ["0", String(pid), "0", "spin"]])
        let json = try session.runsc("ps", "--format", "json", "c1")
        #expect(json.stdout == "[1,\(pid)]\n", "\(json.stderr)")
    }

    @Test func aPausedContainerMakesNoProgressUntilResumed() throws {
        let session = try Self.running(init: ["/bin/ckpt_counter", "100000", "10", "1"])
        let log = session.workspace.path + "/c1.log"
        try session.waitFor("\n", in: log)
        #expect(try session.runsc("pause", "c1").status == 0)
        #expect(try session.state("c1").status == .paused)
        let atPause = try session.workspace.read("c1.log")
        usleep(600_000)
        #expect(try session.workspace.read("c1.log") == atPause, "no line is written while paused")

        let exec = try session.runsc("exec", "c1", "hello")
        #expect(exec.isCleanError)
        #expect(exec.stderr.contains("cannot exec in a container that is paused"), "\(exec.stderr)")
        #expect(try session.runsc("pause", "c1").isCleanError, "a paused container cannot be paused again")

        #expect(try session.runsc("resume", "c1").status == 0)
        #expect(try session.state("c1").status == .running)
        let deadline = Date().addingTimeInterval(10)
        while try session.workspace.read("c1.log").count <= atPause.count && Date() < deadline { usleep(20_000) }
        #expect(try session.workspace.read("c1.log").hasPrefix(atPause))
        #expect(try session.workspace.read("c1.log").count > atPause.count, "it counts on after resume")
        #expect(try session.runsc("resume", "c1").isCleanError, "a running container cannot be resumed")

        #expect(try session.runsc("pause", "c1").status == 0)
        #expect(try session.runsc("kill", "c1", "TERM").status == 0)
        #expect(try session.state("c1").status == .paused, "a signal other than SIGKILL waits for the resume")
        #expect(try session.runsc("resume", "c1").status == 0)
        let waited = try session.runsc("wait", "c1")
        #expect(waited.stdout == "{\"exitStatus\":143,\"id\":\"c1\"}\n", "\(waited.stderr)")
    }

    /// A process waiting in pause(2) when the container is paused, sent a
    /// handled signal meanwhile: after the resume its handler runs and pause
    /// returns EINTR, as natively. The pause had rewound pause(2) to run
    /// again; the handler ran at the rewound call, which then waited for ever.
    @Test func aSignalSentWhilePausedEndsAWaitingPauseWithEINTR() throws {
        let session = try Self.running(init: ["/bin/timer_pause_loop", "signal"])
        let log = session.workspace.path + "/c1.log"
        try session.waitFor("ready", in: log)
        #expect(try session.runsc("pause", "c1").status == 0)
        #expect(try session.runsc("kill", "c1", "USR1").status == 0)
        #expect(try session.runsc("resume", "c1").status == 0)
        try session.waitFor("pause:", in: log)
        let waited = try session.runsc("wait", "c1")
        #expect(waited.stdout == "{\"exitStatus\":0,\"id\":\"c1\"}\n", "\(waited.stderr)")
        let native = try JobControlTests.runNatively(["signal"], program: try Fixtures.binary("timer_pause_loop"),
                                                     steps: [(mark: "ready", signals: [SIGUSR1])])
        #expect(native.stdout == "ready\npause: -1 Interrupted system call, handler ran 1 time(s)\n")
        #expect(try session.workspace.read("c1.log") == native.stdout)
    }

    /// A paused process uses no CPU: ps's TIME of a counting init grows by
    /// what it ran after the resume, not by the time it spent paused.
    @Test func timeSpentPausedIsNotCPUTime() throws {
        let session = try Self.running(init: ["/bin/ckpt_counter", "100000", "10", "1"])
        try session.waitFor("\n", in: session.workspace.path + "/c1.log")
        #expect(try session.runsc("pause", "c1").status == 0)
        let before = try Self.cpuSeconds(of: 1, in: session)
        usleep(1_500_000)
        #expect(try session.runsc("resume", "c1").status == 0)
        let after = try Self.cpuSeconds(of: 1, in: session)
        #expect(after - before < 1.0, "\(before) s before the pause, \(after) s after it")
    }

    /// The TIME column of `runsc ps` for `pid`, in seconds (Go's duration format: 1.5s, 2m3s, 250ms, 12µs).
    static func cpuSeconds(of pid: Int32, in session: ContainerSession) throws -> Double {
        let table = try session.runsc("ps", "c1").stdout.split(separator: "\n").dropFirst()
        let row = try #require(table.map { $0.split(separator: " ") }.first { $0.count > 6 && $0[1] == "\(pid)" })
        var text = Substring(row[6])
        var seconds = 0.0
        let units: [(String, Double)] = [("h", 3600), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("m", 60), ("s", 1)]
        while !text.isEmpty {
            let number = text.prefix { $0.isNumber || $0 == "." }
            text = text.dropFirst(number.count)
            let (unit, scale) = try #require(units.first { text.hasPrefix($0.0) }, "unit in \(row[6])")
            text = text.dropFirst(unit.count)
            seconds += (Double(number) ?? 0) * scale
        }
        return seconds
    }

    @Test func aPausedContainerIsCheckpointedKilledAndDeleted() throws {
        let session = try Self.running()
        #expect(try session.runsc("pause", "c1").status == 0)
        let image = session.workspace.path + "/image"
        let saved = try session.runsc("checkpoint", "--leave-running", "--image-path", image, "c1")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.state("c1").status == .paused, "a checkpoint that leaves it running leaves it paused")
        let refused = try session.runsc("delete", "c1")
        #expect(refused.stderr.contains("it is paused"), "\(refused.stderr)")
        #expect(try session.runsc("kill", "c1", "KILL").status == 0)
        let waited = try session.runsc("wait", "c1")
        #expect(waited.stdout == "{\"exitStatus\":137,\"id\":\"c1\"}\n", "SIGKILL ends a paused container: \(waited.stderr)")

        let second = try Self.running("c2")
        #expect(try second.runsc("pause", "c2").status == 0)
        #expect(try second.runsc("delete", "--force", "c2").status == 0)
        #expect(!second.directoryExists("c2"))
    }

    /// SIGKILL: any other signal that ends init makes its death kill the
    /// rest, and which comes first is a race (as in a Linux PID namespace).
    @Test func killAllEndsTheExecdProcessesToo() throws {
        let session = try Self.running()
        let pid = try Self.spinDetached(session)
        #expect(try session.runsc("kill", "--all", "c1", "KILL").status == 0)
        let spun = try session.runsc("wait", "--pid", String(pid), "c1")
        #expect(spun.stdout == "{\"exitStatus\":137,\"id\":\"c1\"}\n", "\(spun.stderr)")
        let waited = try session.runsc("wait", "c1")
        #expect(waited.stdout == "{\"exitStatus\":137,\"id\":\"c1\"}\n", "\(waited.stderr)")
    }

    @Test func execRunsInARestoredContainer() throws {
        let session = try Self.running()
        let image = session.workspace.path + "/image"
        let saved = try session.runsc("checkpoint", "--image-path", image, "c1")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.runsc("delete", "c1").status == 0)
        let restored = try session.runsc(["restore", "--detach", "--image-path", image, "--bundle", session.bundle, "c2"],
                                         output: session.workspace.path + "/c2.log")
        let log = (try? session.workspace.read("c2.log")) ?? ""
        try #require(restored == 0, "\(log)")
        let hello = try session.runsc("exec", "c2", "hello")
        #expect(hello.status == 0, "\(hello.stderr)")
        #expect(hello.stdout == (try Fixtures.runNatively("hello")).stdout)
        let listed = try session.runsc("ps", "--format", "json", "c2")
        #expect(listed.stdout == "[1]\n", "the exec'd process is gone, init is restored: \(listed.stderr)")
    }

    /// runsc exec's stdio does not outlive its sandbox: a restored exec'd
    /// process finds it hung up (its next write fails and the counter
    /// exits), while init and the restore are unaffected.
    @Test func anImageWithAnExecdProcessRestoresItWithItsStdioDisconnected() throws {
        let session = try Self.running()
        let output = session.workspace.path + "/counter.log"
        #expect(try session.runsc(["exec", "-d", "c1", "ckpt_counter", "100000", "20", "1"], output: output) == 0)
        try session.waitFor("\n", in: output)
        let image = session.workspace.path + "/image"
        let saved = try session.runsc("checkpoint", "--leave-running", "--image-path", image, "c1")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.runsc("delete", "--force", "c1").status == 0)
        let restored = try session.runsc(["restore", "--detach", "--image-path", image, "--bundle", session.bundle, "c2"],
                                         output: session.workspace.path + "/c2.log")
        let log = (try? session.workspace.read("c2.log")) ?? ""
        try #require(restored == 0, "\(log)")
        let deadline = Date().addingTimeInterval(10)
        var listed = ""
        repeat {
            listed = try session.runsc("ps", "--format", "json", "c2").stdout
            if listed == "[1]\n" { break }
            usleep(50_000)
        } while Date() < deadline
        #expect(listed == "[1]\n", "the restored counter ends at its first write")
        #expect(try session.state("c2").status == .running)
    }

    @Test func aCheckpointThatStopsTheContainerEndsAWaitingExecWithAClearError() throws {
        let session = try Self.running()
        let exec = try Self.launch(session, ["exec", "c1", "sleep_exit", "60000", "0"], output: "exec.log")
        try session.waitFor("started", in: session.workspace.path + "/exec.log")
        let saved = try session.runsc("checkpoint", "--image-path", session.workspace.path + "/image", "c1")
        #expect(saved.status == 0, "\(saved.stderr)")
        exec.waitUntilExit()
        #expect(exec.terminationStatus == 1)
        let said = try session.workspace.read("exec.log")
        #expect(said.contains("was checkpointed to"), "\(said)")
    }

    @Test func execRefusesWhatCannotRunWithRuncsMessages() throws {
        let session = try Self.running(init: ["/bin/exit_code", "3"])
        let missingContainer = try session.runsc("exec", "nope", "hello")
        #expect(missingContainer.isCleanError)
        #expect(missingContainer.stderr == "runsc: container \"nope\" does not exist\n")

        _ = try session.runsc("wait", "c1")
        let stopped = try session.runsc("exec", "c1", "hello")
        #expect(stopped.isCleanError)
        #expect(stopped.stderr.contains("cannot exec in a container that is stopped"), "\(stopped.stderr)")
        let noProcesses = try session.runsc("ps", "c1")
        #expect(noProcesses.isCleanError)

        let live = try Self.running("c2")
        let missing = try live.runsc("exec", "c2", "no-such-command")
        #expect(missing.status == 127)
        #expect(missing.stderr.contains("exec: \"no-such-command\": executable file not found in $PATH"),
                "\(missing.stderr)")
        let noCommand = try live.runsc("exec", "c2")
        #expect(noCommand.isCleanError)
        #expect(try live.state("c2").status == .running, "a failed exec leaves the container as it was")
    }
}

import Foundation
import Testing

/// Job control in the sandbox, compared with native runs: process groups
/// and sessions as the container's init (a session leader, so natively
/// under setsid(1)) sees them, a parent's wait for its stopped and
/// continued children, and stop and continue driven from outside
/// by `runsc kill` (kill(2) natively): a stopped process sleeps, SIGKILL
/// still ends it, and a checkpoint of it restores stopped.
@Suite(.serialized) struct JobControlTests {
    @Test func processGroupsAndSessionsMatchANativeSessionLeader() throws {
        let sandbox = try SandboxRun(["/bin/jobctl_cases", "groups"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("jobctl_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/jobctl_cases")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.run("/usr/bin/setsid", ["-w", try Fixtures.binary("jobctl_cases"), "groups"])
        #expect(native.status == 0, "\(native.stderr)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// A parent's view of its children's stops and continues (WUNTRACED,
    /// WCONTINUED, waitid's WSTOPPED with WNOWAIT, SIGCHLD's CLD_STOPPED and
    /// CLD_CONTINUED, SA_NOCLDSTOP), setpgid of a child before and after
    /// its exec, kill to a group of two children.
    @Test func aParentSeesItsChildrenStopAndContinueAsOnLinux() throws {
        let sandbox = try SandboxRun(["/bin/jobctl_cases", "wait"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("jobctl_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/jobctl_cases")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.run("/usr/bin/setsid", ["-w", try Fixtures.binary("jobctl_cases"), "wait"])
        #expect(native.status == 0, "\(native.stderr)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// raise(SIGSTOP) continued by SIGCONT with a handler; then a pause(2)
    /// stopped and continued, which the handler ends with EINTR. While
    /// stopped the sandbox spends (almost) no CPU: the task sleeps.
    @Test func stopAndContinueMatchANativeRun() throws {
        let native = try Self.runNatively(["stop"], steps: Self.steps)
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/jobctl_cases", "stop"])
        try session.runDetached("j1", output: "out")
        try SignalTests.waitFor("stopping", in: session, output: "out")
        usleep(200_000)
        let pid = try session.sandboxPID("j1")
        let before = try Self.cpuTicks(pid)
        usleep(1_000_000)
        let spent = try Self.cpuTicks(pid) - before
        #expect(spent < 20, "a stopped process took \(spent) ticks of CPU in a second")
        #expect(!session.read("out").contains("continued"), "ran on while stopped: \(session.read("out"))")
        try Self.drive(session, "j1", output: "out")
        #expect(try session.wait("j1") == Int(native.status))
        #expect(session.read("out") == native.stdout, "\(session.errors(of: "out"))")
    }

    @Test func aStoppedProcessIsKilledBySIGKILL() throws {
        let session = try CheckpointSession(["/bin/jobctl_cases", "stop"])
        try session.runDetached("k1", output: "out")
        try SignalTests.waitFor("stopping", in: session, output: "out")
        usleep(200_000)
        #expect(try session.runsc("kill", "k1", "KILL").status == 0)
        #expect(try session.wait("k1") == 137)
        #expect(!session.read("out").contains("continued"))
    }

    /// The image of a stopped process restores stopped: nothing runs until
    /// SIGCONT, whose handler then runs, and the rest equals a native run.
    @Test func aCheckpointOfAStoppedProcessRestoresStopped() throws {
        let native = try Self.runNatively(["stop"], steps: Self.steps)
        #expect(native.status == 0)

        let session = try CheckpointSession(["/bin/jobctl_cases", "stop"])
        try session.runDetached("s1", output: "before")
        try SignalTests.waitFor("stopping", in: session, output: "before")
        usleep(200_000)
        let saved = try session.checkpoint("s1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restoreDetached("s2", image: "image", output: "after").status == 0)
        usleep(500_000)
        #expect(session.read("after").isEmpty, "ran on while stopped: \(session.read("after"))")
        #expect(try session.runsc("kill", "s2", "CONT").status == 0)
        try Self.drive(session, "s2", output: "after", steps: Self.steps.dropFirst())
        #expect(try session.wait("s2") == 0)
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init),
                "\(session.errors(of: "after"))")
    }

    /// After each mark, the signals the test sends.
    static let steps: [(mark: String, signals: [Int32])] = [("stopping", [SIGCONT]), ("pausing", [SIGSTOP, SIGCONT])]

    /// The same steps through `runsc kill`.
    static func drive(_ session: CheckpointSession, _ id: String, output: String,
                      steps: ArraySlice<(mark: String, signals: [Int32])> = steps[...]) throws {
        let names = [SIGCONT: "CONT", SIGSTOP: "STOP"]
        for step in steps {
            try SignalTests.waitFor(step.mark, in: session, output: output)
            // Let the program reach its stop or its pause after the mark.
            usleep(100_000)
            for signal in step.signals {
                #expect(try session.runsc("kill", id, names[signal] ?? "").status == 0)
                usleep(100_000)
            }
        }
    }

    /// Runs `program` (jobctl_cases unless given) natively, sending each
    /// step's signals once its mark shows.
    static func runNatively(_ arguments: [String], program: String? = nil,
                            steps: [(mark: String, signals: [Int32])]) throws -> RunscProcess.Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("native-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try program ?? Fixtures.binary("jobctl_cases"))
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let read = { String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self) }
        for step in steps {
            let deadline = Date().addingTimeInterval(30)
            while !read().contains(step.mark) && process.isRunning && Date() < deadline { usleep(5_000) }
            usleep(100_000)
            for signal in step.signals {
                kill(process.processIdentifier, signal)
                usleep(100_000)
            }
        }
        process.waitUntilExit()
        try handle.close()
        return RunscProcess.Result(status: process.terminationStatus, stdout: read(), stderr: "")
    }

    /// utime + stime of a host process, in clock ticks (/proc/PID/stat).
    static func cpuTicks(_ pid: pid_t) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        guard let close = stat.lastIndex(of: ")") else { throw SetupError("/proc/\(pid)/stat: \(stat)") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, utime 14 and stime 15.
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else {
            throw SetupError("/proc/\(pid)/stat: \(stat)")
        }
        return user + system
    }
}

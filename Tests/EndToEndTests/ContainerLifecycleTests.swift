import Foundation
import OCI
import Testing

/// Containers through their whole life, as a container engine drives runsc:
/// create, start, state, kill, wait, delete, list, and what happens when the
/// sandbox process is killed behind runsc's back.
@Suite struct ContainerLifecycleTests {
    @Test func createStartWaitDeleteReportsEachStatus() throws {
        let session = try ContainerSession(["/bin/sleep_exit", "1500", "7"])
        let created = try session.runsc("create", "--bundle", session.bundle, "c1")
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.isEmpty)

        let before = try session.state("c1")
        #expect(before.status == .created)
        #expect(before.id == "c1")
        #expect(before.bundle == session.bundle)
        let pid = try #require(before.pid)
        #expect(!ContainerSession.isGone(pid), "the sandbox process runs after create returned")

        #expect(try session.runsc("start", "c1").status == 0)
        #expect(try session.state("c1").status == .running)
        let again = try session.runsc("start", "c1")
        #expect(again.isCleanError)
        #expect(again.stderr.contains("cannot start a container that is running"), "\(again.stderr)")

        let waited = try session.runsc("wait", "c1")
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(waited.stdout == "{\"exitStatus\":7,\"id\":\"c1\"}\n")
        #expect(try session.state("c1").status == .stopped, "the sandbox serves state until delete")
        #expect(try session.runsc("wait", "c1").stdout == waited.stdout, "wait on an exited container answers at once")

        let deleted = try session.runsc("delete", "c1")
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(!session.directoryExists("c1"))
        #expect(ContainerSession.waitForExit(of: pid), "delete ends the sandbox process")
        #expect(try session.runsc("state", "c1").stderr == "runsc: container \"c1\" does not exist\n")
    }

    @Test func detachedRunWritesTheContainersOutputWhereRunscsWent() throws {
        let session = try ContainerSession(["/bin/sleep_exit", "200", "5"])
        let log = session.workspace.path + "/out.log"
        let pidFile = session.workspace.path + "/sandbox.pid"
        let status = try session.runsc(["run", "--detach", "--pid-file", pidFile, "--bundle", session.bundle, "d1"],
                                       output: log)
        #expect(status == 0)
        let waited = try session.runsc("wait", "d1")
        #expect(waited.stdout == "{\"exitStatus\":5,\"id\":\"d1\"}\n", "\(waited.stderr)")
        #expect(try session.workspace.read("out.log") == "started\nfinished\n")
        // The PID file names the container's life (what conmon waits for): it has ended with init.
        let recorded = try #require(Int32(try session.workspace.read("sandbox.pid")))
        #expect(ContainerSession.waitForExit(of: recorded), "the --pid-file process ends when init does")
        #expect(try session.state("d1").status == .stopped, "state still answers after it has gone")
        #expect(try session.runsc("delete", "d1").status == 0)
    }

    /// The signal as `runsc kill` is given it ("" for the default, SIGTERM) and the status wait reports.
    static let signals: [(String, Int32)] = [("", 143), ("KILL", 137), ("INT", 130), ("9", 137), ("SIGTERM", 143)]

    @Test(arguments: signals)
    func killEndsALoopingContainerWithThatSignal(_ signal: String, _ expected: Int32) throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "k1"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let killed = try RunscProcess.run(["--root", session.workspace.stateRoot, "kill", "k1"] + (signal.isEmpty ? [] : [signal]))
        #expect(killed.status == 0, "\(killed.stderr)")
        let waited = try session.runsc("wait", "k1")
        #expect(waited.stdout == "{\"exitStatus\":\(expected),\"id\":\"k1\"}\n", "\(waited.stderr)")
        #expect(try session.state("k1").status == .stopped)
        let late = try session.runsc("kill", "k1")
        #expect(late.isCleanError)
        #expect(late.stderr.contains("cannot signal a container that is stopped"), "\(late.stderr)")
    }

    @Test func deleteRefusesARunningContainerUnlessForced() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "r1"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let pid = try #require(try session.state("r1").pid)

        let refused = try session.runsc("delete", "r1")
        #expect(refused.isCleanError)
        #expect(refused.stderr.contains("it is running; stop it first or use --force"), "\(refused.stderr)")
        #expect(try session.state("r1").status == .running, "a refused delete changes nothing")

        let forced = try session.runsc("delete", "--force", "r1")
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(!session.directoryExists("r1"))
        #expect(ContainerSession.waitForExit(of: pid))
    }

    @Test func aCreatedContainerIsDeletedWithoutEverRunning() throws {
        let session = try ContainerSession(["/bin/hello"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["create", "-b", session.bundle, "n1"], output: log) == 0)
        let pid = try #require(try session.state("n1").pid)
        let deleted = try session.runsc("delete", "n1")
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(!session.directoryExists("n1"))
        #expect(ContainerSession.waitForExit(of: pid))
        #expect(try session.workspace.read("out.log").isEmpty, "the program never ran")
    }

    @Test func listShowsEachContainerWithItsStatus() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["create", "-b", session.bundle, "a-created"], output: log) == 0)
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "b-running"], output: log) == 0)

        let table = try session.runsc("list")
        #expect(table.status == 0, "\(table.stderr)")
        let rows = table.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.first == ["ID", "PID", "STATUS", "BUNDLE"])
        #expect(rows.dropFirst().map { [$0[0], $0[2], $0[3]] }
                == [["a-created", "created", session.bundle], ["b-running", "running", session.bundle]])

        #expect(try session.runsc("list", "-q").stdout == "a-created\nb-running\n")
        let json = try session.runsc("list", "--format", "json")
        let states = try JSONDecoder().decode([ContainerState].self, from: Data(json.stdout.utf8))
        #expect(states.map(\.id) == ["a-created", "b-running"])
        #expect(states.map(\.status) == [.created, .running])
    }

    @Test func aKilledSandboxLeavesStaleStateThatIsReportedAndCleaned() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "s1"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let pid = try #require(try session.state("s1").pid)
        kill(pid, SIGKILL)
        #expect(ContainerSession.waitForExit(of: pid))

        let state = try session.state("s1")
        #expect(state.status == .stopped, "a gone sandbox is not trusted to be running")
        #expect(try session.runsc("list").stdout.contains("stopped"))

        let killed = try session.runsc("kill", "s1")
        #expect(killed.isCleanError)
        #expect(killed.stderr == "runsc: container \"s1\": sandbox process \(pid) is not running (stale state, cleaned up)\n")
        #expect(!session.directoryExists("s1"))
        #expect(try session.runsc("list", "-q").stdout.isEmpty)
    }

    @Test func aReusedPIDDoesNotMakeStaleStateLookAlive() throws {
        let session = try ContainerSession(["/bin/hello"])
        // A state directory whose sandbox PID now belongs to another process (this test) with another start time.
        let directory = session.workspace.stateRoot + "/p1"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let state = ContainerState(id: "p1", status: .running, pid: getpid(), bundle: session.bundle)
        try Data(try state.encodedJSON()).write(to: URL(fileURLWithPath: directory + "/state.json"))
        try Data("{\"pid\":\(getpid()),\"startTime\":1}".utf8).write(to: URL(fileURLWithPath: directory + "/sandbox.json"))

        #expect(try session.state("p1").status == .stopped)
        let started = try session.runsc("start", "p1")
        #expect(started.stderr == "runsc: container \"p1\": sandbox process \(getpid()) is not running (stale state, cleaned up)\n")
        #expect(!session.directoryExists("p1"))
    }

    @Test func aStaleDirectoryDoesNotBlockANewContainerWithItsID() throws {
        let session = try ContainerSession(["/bin/sleep_exit", "0", "3"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["create", "-b", session.bundle, "i1"], output: log) == 0)
        let pid = try #require(try session.state("i1").pid)
        kill(pid, SIGKILL)
        #expect(ContainerSession.waitForExit(of: pid))
        let result = try session.runsc("run", "-b", session.bundle, "i1")
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stdout == "started\nfinished\n")
    }

    @Test func aLiveContainersIDCannotBeTakenAgain() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["create", "-b", session.bundle, "t1"], output: log) == 0)
        let second = try session.runsc("create", "-b", session.bundle, "t1")
        #expect(second.stderr == "runsc: container \"t1\" already exists\n")
        #expect(try session.state("t1").status == .created)
    }

    @Test func runOfAMissingExecutableReportsTheSandboxsErrorAndLeavesNothing() throws {
        let session = try ContainerSession(["/bin/no-such-program"])
        for arguments in [["run", "-b", session.bundle, "m1"], ["run", "-d", "-b", session.bundle, "m1"],
                          ["create", "-b", session.bundle, "m1"]] {
            let result = try RunscProcess.run(["--root", session.workspace.stateRoot] + arguments)
            #expect(result.isCleanError, "\(result.stderr)")
            #expect(result.stderr.contains("cannot create container \"m1\""), "\(result.stderr)")
            #expect(result.stderr.contains("/bin/no-such-program"), "\(result.stderr)")
            #expect(!session.directoryExists("m1"), "\(arguments): nothing may be left behind")
        }
    }

    @Test func foregroundRunExitsWithTheStatusAndDeletesTheContainer() throws {
        let session = try ContainerSession(["/bin/sleep_exit", "0", "42"])
        let result = try session.runsc("run", "--bundle", session.bundle, "f1")
        #expect(result.status == 42, "\(result.stderr)")
        #expect(result.stdout == "started\nfinished\n")
        #expect(!session.directoryExists("f1"))
    }

    @Test func theControlSocketIsPrivateToItsOwner() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["create", "-b", session.bundle, "o1"], output: log) == 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: session.workspace.stateRoot + "/o1/control.sock")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func aLongContainerIDStillGetsAControlSocket() throws {
        let session = try ContainerSession(["/bin/sleep_exit", "0", "9"])
        let id = String(repeating: "x", count: 200)
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, id], output: log) == 0)
        #expect(try session.runsc("wait", id).stdout == "{\"exitStatus\":9,\"id\":\"\(id)\"}\n")
        #expect(try session.runsc("delete", id).status == 0)
    }
}

import Foundation
import Testing

/// The sandbox joins the host cgroup `linux.cgroupsPath` names, as runc
/// puts a container's init there: the sandbox and its stubs are members from
/// the start, the limits of `linux.resources` are written, `delete` removes
/// the directories, and a bad value fails `create` naming its field.
@Suite struct CgroupTests {
    static let memoryLimit: Int64 = 512 << 20
    static let pidsLimit: Int64 = 200

    /// Where a cgroup path is on this host: the unified tree, or the v1 hierarchy of `controller`.
    static func directory(_ path: String, controller: String) -> String {
        if FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") { return "/sys/fs/cgroup" + path }
        return "/sys/fs/cgroup/\(controller)" + path
    }

    static var unified: Bool { FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") }

    /// `pid`'s cgroup path for `controller` (v2: the unified line).
    static func cgroup(of pid: Int32, controller: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if unified ? fields[1].isEmpty : fields[1].split(separator: ",").contains(Substring(controller)) {
                return String(fields[2])
            }
        }
        return nil
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func setCgroup(in session: ContainerSession, path: String, pidsLimit: Int64) throws {
        let file = session.bundle + "/config.json"
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
        var linux = config["linux"] as? [String: Any] ?? [:]
        linux["cgroupsPath"] = path
        linux["resources"] = ["memory": ["limit": memoryLimit], "pids": ["limit": pidsLimit]]
        config["linux"] = linux
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: file))
    }

    static func randomName() -> String { "runsc-test-\(UInt32.random(in: 0...UInt32.max))" }

    @Test func theSandboxAndItsStubsJoinAnAbsoluteCgroupPathWithItsLimits() throws {
        let session = try ContainerSession(["/bin/spin"])
        let path = "/" + Self.randomName()
        try Self.setCgroup(in: session, path: path, pidsLimit: Self.pidsLimit)
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "grouped"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let sandbox = try #require(try session.state("grouped").pid)
        let stubs = ConfinementTests.children(of: sandbox, named: "runsc-stub")
        #expect(!stubs.isEmpty, "no stub among the sandbox's children")
        for pid in [sandbox] + stubs {
            for controller in ["memory", "pids"] {
                #expect(Self.cgroup(of: pid, controller: controller) == path, "process \(pid) is not in \(path) for \(controller)")
            }
        }
        // runsc itself went back where it was.
        #expect(Self.cgroup(of: getpid(), controller: "memory") != path)
        let memoryFile = Self.unified ? "memory.max" : "memory.limit_in_bytes"
        #expect(Self.read(Self.directory(path, controller: "memory") + "/" + memoryFile) == String(Self.memoryLimit))
        #expect(Self.read(Self.directory(path, controller: "pids") + "/pids.max") == String(Self.pidsLimit))

        // events --stats reads the cgroup: its limit, and the sandbox's threads count as tasks.
        let events = try session.runsc("events", "--stats", "grouped")
        #expect(events.status == 0, "\(events.stderr)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(events.stdout.utf8)) as? [String: Any])
        let data = stats["data"] as? [String: Any]
        let memory = (data?["memory"] as? [String: Any])?["usage"] as? [String: Any]
        #expect((memory?["limit"] as? NSNumber)?.int64Value == Self.memoryLimit, "\(events.stdout)")
        #expect(((memory?["usage"] as? NSNumber)?.int64Value ?? 0) > 0, "\(events.stdout)")
        let pids = data?["pids"] as? [String: Any]
        #expect((pids?["limit"] as? NSNumber)?.int64Value == Self.pidsLimit, "\(events.stdout)")
        #expect(((pids?["current"] as? NSNumber)?.intValue ?? 0) >= 1 + stubs.count, "\(events.stdout)")

        #expect(try session.runsc("delete", "--force", "grouped").status == 0)
        for controller in ["memory", "pids", "cpu"] {
            let directory = Self.directory(path, controller: controller)
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) is left after delete")
        }
    }

    /// A relative cgroupsPath is under the caller's own cgroup in each hierarchy, as runc has it.
    @Test func aRelativeCgroupPathIsUnderTheCallersCgroup() throws {
        let session = try ContainerSession(["/bin/spin"])
        let name = Self.randomName()
        try Self.setCgroup(in: session, path: name, pidsLimit: Self.pidsLimit)
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "relative"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let sandbox = try #require(try session.state("relative").pid)
        var directories: [String] = []
        for controller in ["memory", "pids"] {
            let own = try #require(Self.cgroup(of: getpid(), controller: controller))
            let expected = (own == "/" ? "" : own) + "/" + name
            #expect(Self.cgroup(of: sandbox, controller: controller) == expected)
            directories.append(Self.directory(expected, controller: controller))
        }
        #expect(try session.runsc("delete", "--force", "relative").status == 0)
        for directory in directories {
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) is left after delete")
        }
    }

    /// With `--systemd-cgroup`, "slice:prefix:name" is the directory systemd would make
    /// ("a-b.slice" nests in "a.slice"); systemd does not run here, so runsc makes it with cgroupfs.
    @Test func aSystemdCgroupPathIsWhereSystemdWouldPutIt() throws {
        let session = try ContainerSession(["/bin/spin"])
        // Without dashes: systemd nests a slice at each one.
        let slice = "runsctest\(UInt32.random(in: 0...UInt32.max))"
        try Self.setCgroup(in: session, path: "\(slice)-inner.slice:runsc:ctr", pidsLimit: Self.pidsLimit)
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["--systemd-cgroup", "run", "-d", "-b", session.bundle, "systemd"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let sandbox = try #require(try session.state("systemd").pid)
        let expected = "/\(slice).slice/\(slice)-inner.slice/runsc-ctr.scope"
        #expect(Self.cgroup(of: sandbox, controller: "pids") == expected)
        #expect(try session.runsc("delete", "--force", "systemd").status == 0)
        let top = Self.directory("/\(slice).slice", controller: "pids")
        #expect(!FileManager.default.fileExists(atPath: top), "\(top) is left after delete")
    }

    /// The directories are recorded beside the state, so a delete after the sandbox was killed still removes them.
    @Test func deleteAfterTheSandboxWasKilledRemovesTheCgroup() throws {
        let session = try ContainerSession(["/bin/spin"])
        let path = "/" + Self.randomName()
        try Self.setCgroup(in: session, path: path, pidsLimit: Self.pidsLimit)
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "killed"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let sandbox = try #require(try session.state("killed").pid)
        #expect(kill(sandbox, SIGKILL) == 0)
        #expect(ContainerSession.waitForExit(of: sandbox))
        let pids = Self.directory(path, controller: "pids")
        #expect(FileManager.default.fileExists(atPath: pids))
        let deleted = try session.runsc("delete", "killed")
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(!FileManager.default.fileExists(atPath: pids), "\(pids) is left after delete")
    }

    /// A pids limit no kernel has fails create naming the field, and leaves no cgroup behind.
    @Test func aBadLimitFailsCreateNamingItsField() throws {
        let session = try ContainerSession(["/bin/spin"])
        let path = "/" + Self.randomName()
        try Self.setCgroup(in: session, path: path, pidsLimit: -2)
        let result = try session.runsc("create", "-b", session.bundle, "refused")
        #expect(result.status != 0)
        #expect(result.stderr.contains("linux.resources.pids.limit"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: Self.directory(path, controller: "pids")))
        #expect(!session.directoryExists("refused"))
    }
}

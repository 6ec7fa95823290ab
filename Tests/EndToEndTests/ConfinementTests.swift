import Foundation
import Testing

/// The sandbox process and its stubs, seen from the host while a container
/// runs: NoNewPrivs, only the capabilities `Confinement.keptCapabilities`
/// documents, both under seccomp, no core dumps, new mount, IPC, UTS, network and PID
/// namespaces for both, and an empty root holding only the paths the sandbox uses.
@Suite struct ConfinementTests {
    /// CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER and
    /// CAP_FSETID, as Sources/Boot/Confinement.swift documents each.
    static let keptCapabilities: UInt64 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4)
    /// The sandbox is the init of its PID namespace (the launcher clones it into one), the stubs its members.
    static let newNamespaces = ["mnt", "ipc", "uts", "net", "pid"]
    /// getppid's number on x86_64 (SYS_getppid), which the test hook injects.
    static let getppidNumber = 110

    @Test func theSandboxAndItsStubsRunConfined() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "confined"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let sandbox = try #require(try session.state("confined").pid)
        let stubs = Self.children(of: sandbox, named: "runsc-stub")
        #expect(!stubs.isEmpty, "no stub among the sandbox's children")

        let sandboxStatus = try Self.status(of: sandbox)
        #expect(sandboxStatus["NoNewPrivs"] == "1")
        #expect(sandboxStatus["Seccomp"] == "2", "the Sentry runs without its host seccomp filter: \(sandboxStatus)")
        // The filter is synchronised to every thread (TSYNC), not only the leader /proc/PID/status shows.
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(sandbox)/task")
        #expect(threads.count > 1, "the sandbox has its control, timer and task threads")
        for thread in threads {
            let status = try? Self.status(ofPath: "/proc/\(sandbox)/task/\(thread)/status")
            #expect(status == nil || status?["Seccomp"] == "2", "thread \(thread) runs unfiltered")
        }
        #expect(sandboxStatus["CapEff"].flatMap { UInt64($0, radix: 16) } == Self.keptCapabilities, "\(sandboxStatus)")
        #expect(sandboxStatus["CapBnd"].flatMap { UInt64($0, radix: 16) } == Self.keptCapabilities)
        for stub in stubs {
            let status = try Self.status(of: stub)
            #expect(status["Seccomp"] == "2", "stub \(stub): \(status)")
            #expect(status["NoNewPrivs"] == "1")
            #expect(status["CapEff"].flatMap { UInt64($0, radix: 16) } == Self.keptCapabilities)
        }
        for pid in [sandbox] + stubs {
            #expect(try Self.coreLimit(of: pid) == "0 0", "process \(pid) may dump the Sentry's memory to a core file")
        }
        for namespace in Self.newNamespaces {
            let host = try Self.namespace(namespace, of: getpid())
            let ours = try Self.namespace(namespace, of: sandbox)
            #expect(ours != host, "the sandbox shares the host's \(namespace) namespace")
            for stub in stubs {
                #expect(try Self.namespace(namespace, of: stub) == ours, "stub \(stub) left the sandbox's \(namespace) namespace")
            }
        }
    }

    /// The sandbox and its stubs see, from their root, only the bundle's
    /// rootfs and the state directory at their host paths, on an empty,
    /// read-only tmpfs: no host /etc, /usr or /proc.
    @Test func theSandboxAndItsStubsSeeAnEmptyRoot() throws {
        let session = try ContainerSession(["/bin/spin"])
        let log = session.workspace.path + "/out.log"
        #expect(try session.runsc(["run", "-d", "-b", session.bundle, "rooted"], output: log) == 0)
        try session.waitFor("spinning\n", in: log)
        let sandbox = try #require(try session.state("rooted").pid)
        let stubs = Self.children(of: sandbox, named: "runsc-stub")
        #expect(!stubs.isEmpty, "no stub among the sandbox's children")
        let kept = [session.bundle + "/rootfs", session.workspace.stateRoot]
        let topLevel = Set(kept.compactMap { $0.split(separator: "/").first.map(String.init) })
        var hostRoot = stat()
        #expect(stat("/", &hostRoot) == 0)
        for pid in [sandbox] + stubs {
            let root = "/proc/\(pid)/root"
            let entries = Set(try FileManager.default.contentsOfDirectory(atPath: root))
            #expect(entries == topLevel, "process \(pid) sees \(entries.sorted()) in its root")
            var info = stat()
            #expect(stat(root, &info) == 0)
            #expect(info.st_dev != hostRoot.st_dev, "process \(pid)'s root is the host's")
            #expect(FileManager.default.fileExists(atPath: root + session.bundle + "/rootfs/bin/spin"),
                    "process \(pid) does not reach the rootfs at its host path")
            #expect(FileManager.default.fileExists(atPath: root + session.workspace.stateRoot + "/rooted"),
                    "process \(pid) does not reach its state directory")
            let writable = access(root + "/" + (topLevel.first ?? ""), W_OK)
            #expect(writable == -1 && errno == EROFS, "process \(pid)'s root is not read-only")
        }
    }

    /// What the Sentry learns from the host's /proc and /sys (the CPUs it
    /// reports) is read before it leaves the host's root: the container sees
    /// the host's CPUs, as natively (glibc's sysconf answers 1 without /sys).
    @Test func theContainerSeesTheHostsCPUsFromTheEmptyRoot() throws {
        let sandbox = try SandboxRun(["/bin/busybox", "nproc"], busybox: true)
        let natively = try Fixtures.run(Fixtures.busybox, ["nproc"])
        #expect(sandbox.result.status == 0, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stdout == natively.stdout)
    }

    /// `runsc boot --debug`'s test hook makes every new stub run getppid on
    /// its code page, an injected call its filter does not allow.
    @Test func aStubsForbiddenHostCallKillsIt() throws {
        let sandbox = try SandboxRun(["/bin/spin"], start: false)
        let log = sandbox.workspace.path + "/runsc.log"
        let id = "forbidden\(UInt32.random(in: 0...UInt32.max))"
        let result = try RunningRunsc(arguments: ["--root", sandbox.workspace.stateRoot, "--debug", "--log", log,
                                                  "run", "--bundle", sandbox.bundle, id],
                                      scratch: sandbox.workspace.path,
                                      cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id],
                                      environment: ["RUNSC_TEST_STUB_FORBIDDEN_CALL": "1"]).finish(timeout: 60)
        #expect(result.status != 0)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect((result.stderr + text).contains("stub killed by its seccomp filter (SIGSYS) on injected syscall \(Self.getppidNumber)"),
                "\(result.stderr)\n\(text.suffix(2000))")
    }

    /// `runsc boot --debug`'s test hook makes the Sentry call acct(2) once it
    /// is ready; with the value `kill` its filter acts as without `--debug`.
    @Test func aForbiddenSentryHostCallKillsTheSandbox() throws {
        let result = try Self.runWithForbiddenSentryCall(hook: "kill")
        #expect(result.status == 1)
        #expect(result.stderr.contains("was killed by SIGSYS"), "\(result.stderr)")
    }

    /// Under `--debug` the same call is logged by name and fails; the container runs on.
    @Test func underDebugAForbiddenSentryHostCallIsLoggedByName() throws {
        let result = try Self.runWithForbiddenSentryCall(hook: "log")
        #expect(result.log.contains("host seccomp filter: forbidden host syscall acct (\(Self.acctNumber))"), "\(result.log.suffix(2000))")
        #expect(result.log.contains("forbidden host call returned -\(Self.enosys)"), "\(result.log.suffix(2000))")
        #expect(!result.stderr.contains("killed"), "\(result.stderr)")
    }

    /// acct's number on x86_64 (SYS_acct) and ENOSYS, as the log prints them.
    static let acctNumber = 163
    static let enosys = 38

    /// Runs /bin/spin under `--debug` with the Sentry's forbidden-call hook
    /// set to `hook`; the container is deleted once the hook has run (or the
    /// sandbox has died of it).
    static func runWithForbiddenSentryCall(hook: String) throws -> (status: Int32, stderr: String, log: String) {
        let sandbox = try SandboxRun(["/bin/spin"], start: false)
        let log = sandbox.workspace.path + "/runsc.log"
        let id = "forbidden-sentry\(UInt32.random(in: 0...UInt32.max))"
        let arguments = ["--root", sandbox.workspace.stateRoot, "--debug", "--log", log, "run", "--bundle", sandbox.bundle, id]
        let running = try RunningRunsc(arguments: arguments, scratch: sandbox.workspace.path,
                                       cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id],
                                       environment: ["RUNSC_TEST_SENTRY_FORBIDDEN_CALL": hook])
        if hook != "kill" {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("forbidden host call returned") {
                Thread.sleep(forTimeInterval: 0.05)
            }
            _ = try RunscProcess.run(["--root", sandbox.workspace.stateRoot, "kill", id, "KILL"], in: sandbox.workspace.path)
        }
        let result = try running.finish(timeout: 60)
        return (result.status, result.stderr, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// `/proc/PID/status` as name: value.
    static func status(of pid: Int32) throws -> [String: String] {
        try status(ofPath: "/proc/\(pid)/status")
    }

    /// The fields of a /proc status file (a process's or a thread's).
    static func status(ofPath path: String) throws -> [String: String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// The soft and hard "Max core file size" of `/proc/PID/limits`.
    static func coreLimit(of pid: Int32) throws -> String? {
        let text = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max core file size") }) else { return nil }
        let fields = line.dropFirst("Max core file size".count).split(separator: " ")
        return fields.count >= 2 ? "\(fields[0]) \(fields[1])" : nil
    }

    static func namespace(_ name: String, of pid: Int32) throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(name)")
    }

    /// Host processes whose parent is `parent` and whose comm is `name`.
    static func children(of parent: Int32, named name: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return false }
            let comm = stat[stat.index(after: open)..<close]
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return comm == name && fields.count > 1 && Int32(fields[1]) == parent
        }
    }
}

import Foundation
import Testing

/// The spec's `linux.seccomp` profile enforced by the Sentry on the
/// application's syscalls: Docker's default profile changes nothing for
/// busybox, python3 and redis, a denied syscall fails with the profile's errno and
/// nothing else changes, TRAP and KILL_PROCESS do what Linux's seccomp does
/// to a native run under the same filter (the fixture installs it itself),
/// a profile that cannot be enforced is refused at `run` naming the field,
/// a restored container keeps its filter, and an application's own BPF
/// filter acts as Linux's.
@Suite struct SeccompProfileTests {
    /// Sets `linux.seccomp` of `bundle`'s config.json to `profile` (JSON).
    static func setProfile(_ profile: String, in bundle: String) throws {
        let path = bundle + "/config.json"
        guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
            as? [String: Any] else { throw SetupError("config.json is not an object") }
        var linux = spec["linux"] as? [String: Any] ?? [:]
        linux["seccomp"] = try JSONSerialization.jsonObject(with: Data(profile.utf8))
        spec["linux"] = linux
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
    }

    /// `args` run in the sandbox under `profile` (none when nil), with the
    /// host's /usr, /lib, /lib64 and /etc bound read-only when `hostSystem`.
    static func run(_ args: [String], profile: String?, busybox: Bool = false, hostSystem: Bool = false,
                    allCapabilities: Bool = false, copying fixture: String? = nil,
                    runscArguments: [String] = []) throws -> RunscProcess.Result {
        let sandbox = try SandboxRun(args, busybox: busybox, start: false)
        if allCapabilities { try SandboxRun.grantAllCapabilities(bundle: sandbox.bundle) }
        if let fixture {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(fixture), toPath: sandbox.bundle + "/rootfs/bin/" + fixture)
        }
        if hostSystem {
            let mounts = DynamicProgramTests.hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }
            try BindMountTests.addBindMounts(mounts.map { ($0, $0, ["ro"]) }, to: sandbox.bundle)
        }
        if let profile { try setProfile(profile, in: sandbox.bundle) }
        guard !runscArguments.isEmpty else { return try sandbox.start().finish(timeout: 120) }
        let id = "c\(UInt32.random(in: 0...UInt32.max))"
        return try RunningRunsc(arguments: ["--root", sandbox.workspace.stateRoot, "run"] + runscArguments
                                    + ["--bundle", sandbox.bundle, id],
                                scratch: sandbox.workspace.path,
                                cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id]).finish(timeout: 120)
    }

    static func requireBusybox() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
    }

    @Test func dockersDefaultProfileLeavesABusyboxShellScriptUnchanged() throws {
        try Self.requireBusybox()
        let args = ["/bin/busybox", "sh", "-c", BusyboxShellTests.script]
        let profiled = try Self.run(args, profile: DockerDefaultSeccompProfile.json, busybox: true)
        let plain = try Self.run(args, profile: nil, busybox: true)
        #expect(profiled.status == plain.status, "\(profiled.stderr)")
        #expect(profiled.stdout == plain.stdout)
        #expect(profiled.stdout.contains("final exec"), "\(profiled.stdout)")
    }

    /// What the profile leaves out fails with its default errno (EPERM):
    /// sethostname needs CAP_SYS_ADMIN's entry, which dockerd drops. The
    /// same process with every capability renames the host without it.
    @Test func dockersDefaultProfileRefusesWhatItLeavesOut() throws {
        try Self.requireBusybox()
        let args = ["/bin/busybox", "sh", "-c", "hostname renamed && hostname"]
        let profiled = try Self.run(args, profile: DockerDefaultSeccompProfile.json, busybox: true, allCapabilities: true)
        let plain = try Self.run(args, profile: nil, busybox: true, allCapabilities: true)
        #expect(profiled.status == 1)
        #expect(profiled.stderr.contains("hostname: sethostname: Operation not permitted"), "\(profiled.stderr)")
        #expect(plain.status == 0 && plain.stdout == "renamed\n", "\(plain.stderr)")
    }

    @Test func dockersDefaultProfileLeavesPython3Unchanged() throws {
        let python = "/usr/bin/python3"
        try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) is not installed")
        let program = """
            import json, hashlib, os, subprocess, tempfile, threading
            d = tempfile.mkdtemp(dir='/tmp'); open(os.path.join(d, 'f'), 'w').write('x' * 100)
            t = threading.Thread(target=lambda: print('thread', sum(range(1000)))); t.start(); t.join()
            out = subprocess.run(['/usr/bin/python3', '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout
            print(json.dumps({'h': hashlib.sha256(b'x').hexdigest(), 'files': os.listdir(d), 'child': out.strip()}))
            """
        let args = [python, "-c", program]
        let profiled = try Self.run(args, profile: DockerDefaultSeccompProfile.json, hostSystem: true)
        let plain = try Self.run(args, profile: nil, hostSystem: true)
        #expect(profiled.status == 0, "\(profiled.stderr)")
        #expect(profiled.status == plain.status, "\(profiled.stderr)")
        #expect(profiled.stdout == plain.stdout, "\(profiled.stderr)")
        #expect(profiled.stdout.contains("\"child\": \"42\""), "\(profiled.stdout)")
    }

    /// Debian's redis-server and redis-cli on the loopback network, 10,000 keys written through
    /// `--pipe`: the same replies under Docker's profile as without it.
    @Test func dockersDefaultProfileLeavesRedisUnchanged() throws {
        for program in ["/usr/bin/redis-server", "/usr/bin/redis-cli"] {
            try #require(FileManager.default.isExecutableFile(atPath: program), "\(program) is not installed")
        }
        let args = ["/usr/bin/sh", "-c", InetSocketTests.redisPipeScript(port: 6393)]
        let profiled = try Self.run(args, profile: DockerDefaultSeccompProfile.json, hostSystem: true)
        let plain = try Self.run(args, profile: nil, hostSystem: true)
        #expect(profiled.status == 0, "\(profiled.stderr)")
        #expect(profiled.stdout == plain.stdout, "\(profiled.stderr)")
        #expect(profiled.stdout.contains("replies: 10000\n10000\nvalue4242\n"), "\(profiled.stdout)")
    }

    /// mkdir fails with EPERM (busybox says so); everything else the script does is as without the profile.
    @Test func aProfileDenyingMkdirFailsOnlyMkdirWithEPERM() throws {
        try Self.requireBusybox()
        let script = """
            mkdir /tmp/denied; echo "mkdir $?"
            echo data > /tmp/file && cat /tmp/file
            touch /tmp/other; ls /tmp | sort | tr '\\n' ' '; echo
            seq 1 5 | sort -r | head -n 2
            rm /tmp/file; echo "rm $?"
            """
        let profile = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#
        let args = ["/bin/busybox", "sh", "-c", script]
        let denied = try Self.run(args, profile: profile, busybox: true)
        let plain = try Self.run(args, profile: nil, busybox: true)
        #expect(plain.stdout.hasPrefix("mkdir 0\n"), "\(plain.stdout) \(plain.stderr)")
        #expect(denied.stderr.contains("mkdir: can't create directory '/tmp/denied': Operation not permitted"), "\(denied.stderr)")
        // The only difference: mkdir's status, and no directory in the listing.
        let expected = plain.stdout.replacingOccurrences(of: "mkdir 0\n", with: "mkdir 1\n")
            .replacingOccurrences(of: "denied ", with: "")
        #expect(denied.stdout == expected)
        #expect(denied.status == plain.status, "\(denied.stderr)")
    }

    static let trapProfile = """
        {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
         "syscalls": [{"names": ["getppid"], "action": "%@"},
                      {"names": ["times"], "action": "SCMP_ACT_TRACE"},
                      {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                       "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}
        """

    /// The handler sees SIGSYS with SYS_SECCOMP, si_syscall, si_arch and
    /// si_call_addr, rax rolled back to the number; ERRNO with an argument
    /// check and TRACE without a tracer (ENOSYS) as under Linux's filter.
    @Test func trapDeliversSigsysWithTheSeccompSiginfoAsLinux() throws {
        let profile = Self.trapProfile.replacingOccurrences(of: "%@", with: "SCMP_ACT_TRAP")
        let result = try Self.run(["/bin/seccomp_cases", "trap"], profile: profile, copying: "seccomp_cases")
        let native = try Fixtures.runNatively("seccomp_cases", ["trap", "install"])
        #expect(native.stdout.contains("handler: signo 31 code 1"), "\(native.stdout)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// The application's own filter (prctl(PR_SET_SECCOMP) with a BPF
    /// program), alone and stacked on Docker's profile, acts as under Linux.
    @Test(arguments: ["trap", "kill", "killthread"])
    func anApplicationsOwnFilterActsAsLinuxs(_ mode: String) throws {
        let native = try Fixtures.runNatively("seccomp_cases", [mode, "install"])
        for profile in [nil, DockerDefaultSeccompProfile.json] {
            let result = try Self.run(["/bin/seccomp_cases", mode, "install"], profile: profile, copying: "seccomp_cases")
            #expect(result.status == native.status, "\(result.stderr)")
            #expect(result.stdout == native.stdout)
        }
    }

    /// runc's container dies of SIGSYS: status 128+31, nothing after the call.
    @Test func killProcessEndsTheContainerWithSIGSYS() throws {
        let profile = Self.trapProfile.replacingOccurrences(of: "%@", with: "SCMP_ACT_KILL_PROCESS")
        let result = try Self.run(["/bin/seccomp_cases", "kill"], profile: profile, copying: "seccomp_cases")
        let native = try Fixtures.runNatively("seccomp_cases", ["kill", "install"])
        #expect(native.status == 128 + SIGSYS)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// KILL_THREAD ends only the thread that made the call; the process runs on.
    @Test func killThreadEndsOnlyTheCallingThread() throws {
        let profile = Self.trapProfile.replacingOccurrences(of: "%@", with: "SCMP_ACT_KILL_THREAD")
        let result = try Self.run(["/bin/seccomp_cases", "killthread"], profile: profile, copying: "seccomp_cases")
        let native = try Fixtures.runNatively("seccomp_cases", ["killthread", "install"])
        #expect(native.stdout.hasSuffix("main alive after the thread\n"), "\(native.stdout)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// A LOG default logs its syscalls at most 10 lines per 5 seconds, as
    /// Linux's printk_ratelimit does with the audit records (not one line per syscall).
    @Test func aLogDefaultActionIsRateLimited() throws {
        try Self.requireBusybox()
        let sandbox = try SandboxRun(["/bin/busybox", "ls", "-lR", "/bin"], busybox: true, start: false)
        try Self.setProfile(#"{"defaultAction": "SCMP_ACT_LOG"}"#, in: sandbox.bundle)
        let log = sandbox.workspace.path + "/runsc.log"
        let id = "c\(UInt32.random(in: 0...UInt32.max))"
        let started = Date()
        let result = try RunningRunsc(arguments: ["--root", sandbox.workspace.stateRoot, "--log", log, "run",
                                                  "--bundle", sandbox.bundle, id],
                                      scratch: sandbox.workspace.path,
                                      cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id]).finish(timeout: 120)
        let windows = Int(Date().timeIntervalSince(started) / 5) + 1
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("by a LOG rule") }
        #expect(!lines.isEmpty)
        #expect(lines.count <= 10 * windows, "\(lines.count) lines in \(windows) windows")
    }

    /// KILL (KILL_THREAD) of a single-threaded process ends it as KILL_PROCESS does.
    @Test func killOfTheOnlyThreadEndsTheProcessWithSIGSYS() throws {
        let profile = Self.trapProfile.replacingOccurrences(of: "%@", with: "SCMP_ACT_KILL")
        let result = try Self.run(["/bin/seccomp_cases", "kill"], profile: profile, copying: "seccomp_cases")
        #expect(result.status == 128 + SIGSYS, "\(result.stderr)")
        #expect(result.stdout.hasSuffix("getppid next\n"), "\(result.stdout)")
    }

    /// The filter is saved with each task: with the kernel saved, thrown
    /// away and restored every two syscalls, the trap run is still the native one.
    @Test func aRestoredContainerKeepsItsFilter() throws {
        let profile = Self.trapProfile.replacingOccurrences(of: "%@", with: "SCMP_ACT_TRAP")
        let result = try Self.run(["/bin/seccomp_cases", "trap"], profile: profile, copying: "seccomp_cases",
                                  runscArguments: ["--debug-save-restore-every", "2"])
        let native = try Fixtures.runNatively("seccomp_cases", ["trap", "install"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// `runsc exec` starts its process under the container's profile.
    @Test func anExecdProcessIsFilteredToo() throws {
        try Self.requireBusybox()
        let session = try ContainerSession(["/bin/sleep_exit", "60000", "0"])
        try Self.setProfile(#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
                            in: session.bundle)
        let status = try session.runsc(["run", "--detach", "--bundle", session.bundle, "c1"],
                                       output: session.workspace.path + "/c1.log")
        try #require(status == 0, "run --detach: \((try? session.workspace.read("c1.log")) ?? "")")
        let denied = try session.runsc("exec", "c1", "/bin/busybox", "mkdir", "/tmp/denied")
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("mkdir: can't create directory '/tmp/denied': Operation not permitted"), "\(denied.stderr)")
        let other = try session.runsc("exec", "c1", "/bin/busybox", "sh", "-c", "echo ok > /tmp/f && cat /tmp/f")
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout == "ok\n")
    }

    @Test(arguments: [
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}"#,
         "linux.seccomp.syscalls[0].args[0].op", "unknown comparison \"SCMP_CMP_SOMETIMES\""),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
         "linux.seccomp.syscalls[0].action", "SCMP_ACT_NOTIFY (seccomp user notification) is not supported"),
        (#"{"defaultAction": "SCMP_ACT_DENY"}"#, "linux.seccomp.defaultAction", "unknown action \"SCMP_ACT_DENY\""),
    ])
    func aProfileThatCannotBeEnforcedIsRefusedAtRun(_ profile: String, _ field: String, _ reason: String) throws {
        let result = try Self.run(["/bin/hello"], profile: profile)
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty, "the container ran: \(result.stdout)")
        #expect(result.stderr.contains(field) && result.stderr.contains(reason), "\(result.stderr)")
    }
}

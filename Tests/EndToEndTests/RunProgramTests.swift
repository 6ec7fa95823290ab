import Foundation
import Testing

/// `runsc run` of static programs: each prints, exits and fails as it does
/// when run natively on this host.
@Suite struct RunProgramTests {
    @Test func helloWorldPrintsWhatANativeRunPrints() throws {
        let sandbox = try SandboxRun(["/bin/hello"])
        let native = try Fixtures.runNatively("hello")
        #expect(sandbox.result.status == 0, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stdout == native.stdout)
        #expect(sandbox.result.stdout == "hello, world\n")
    }

    @Test func aStaticPIEExecutableRuns() throws {
        let sandbox = try SandboxRun(["hello-pie"])
        #expect(sandbox.result.status == 0, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stdout == "hello, world\n")
    }

    /// execve's EACCES, as runc reports it: a 0644 copy of a working program is not run.
    @Test func aFileWithoutExecutePermissionIsRefusedNamingIt() throws {
        let sandbox = try SandboxRun(["/bin/hello-noexec"], start: false)
        let target = sandbox.bundle + "/rootfs/bin/hello-noexec"
        try FileManager.default.copyItem(atPath: try Fixtures.binary("hello"), toPath: target)
        chmod(target, 0o644)
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.stdout.isEmpty, "\(result.stdout)")
        #expect(result.isCleanError, "\(result.stderr)")
        #expect(result.stderr.contains("/bin/hello-noexec: permission denied"), "\(result.stderr)")
    }

    /// Only the spec's mounts: nothing hides the rootfs's own /tmp.
    @Test func aProgramInTheRootfsTmpRunsWhenTheSpecMountsNothingThere() throws {
        let sandbox = try SandboxRun(["/tmp/hello"], start: false, tmpfsAtTmp: false)
        try FileManager.default.createDirectory(atPath: sandbox.bundle + "/rootfs/tmp", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("hello"), toPath: sandbox.bundle + "/rootfs/tmp/hello")
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "hello, world\n")
    }

    /// GNU ls -l asks every file for ACLs and SELinux labels (the xattr calls):
    /// it must list as natively, without an error per file. Run through the
    /// host's ld.so with the libraries `ldd` names (skipped where there is no GNU ls).
    @Test func gnuLsLongListingPrintsNoErrors() throws {
        let ldd = try Fixtures.run("/usr/bin/ldd", ["/bin/ls"])
        try #require(ldd.status == 0, "no dynamically linked /bin/ls to try")
        let libraries = ldd.stdout.split(separator: "\n").compactMap { line -> String? in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first { $0.hasPrefix("/") }.map(String.init)
        }
        let loader = try #require(libraries.first { $0.contains("ld-linux") })
        let sandbox = try SandboxRun([loader, "/bin/ls", "-lan", "--time-style=+%s", "/data"], start: false)
        let rootfs = sandbox.bundle + "/rootfs"
        for library in libraries + ["/bin/ls"] {
            let target = rootfs + library
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            let source = URL(fileURLWithPath: library).resolvingSymlinksInPath().path
            if !FileManager.default.fileExists(atPath: target) { try FileManager.default.copyItem(atPath: source, toPath: target) }
        }
        try FileManager.default.createDirectory(atPath: rootfs + "/data/sub", withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: rootfs + "/data/file"))
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.run("/bin/ls", ["-lan", "--time-style=+%s", rootfs + "/data"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let entries = { (text: String) in text.split(separator: "\n").filter { $0.hasSuffix(" file") || $0.hasSuffix(" sub") } }
        #expect(entries(result.stdout) == entries(native.stdout), "\(result.stdout)")
        #expect(entries(result.stdout).count == 2)
    }

    @Test func argumentsAndEnvironmentReachTheProgramInOrder() throws {
        let sandbox = try SandboxRun(["args_env", "one", "two words", ""], env: ["PATH=/bin", "LANG=C.UTF-8"])
        #expect(sandbox.result.status == 0, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stdout == """
            argc=4
            argv[0]=args_env
            argv[1]=one
            argv[2]=two words
            argv[3]=
            env PATH=/bin
            env LANG=C.UTF-8
            env HOME=/

            """)
    }

    @Test func homeComesFromTheRootfsPasswdFile() throws {
        let sandbox = try SandboxRun(["args_env"], env: ["PATH=/bin"], user: 1000,
                                     files: ["etc/passwd": "root:x:0:0::/root:/bin/sh\nme:x:1000:1000::/home/me:/bin/sh\n"])
        #expect(sandbox.result.stdout.contains("env HOME=/home/me\n"), "\(sandbox.result.stdout)")
    }

    @Test(arguments: ["brk_growth", "mmap_large", "errno_cases", "mmap_file", "process_info"])
    func programsMatchANativeRun(_ name: String) throws {
        let sandbox = try SandboxRun(["/bin/" + name])
        let native = try Fixtures.runNatively(name)
        #expect(sandbox.result.status == native.status, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stdout == native.stdout)
    }

    @Test(arguments: [0, 1, 42, 255])
    func exitStatusIsTheProgramsExitCode(_ code: Int) throws {
        let sandbox = try SandboxRun(["/bin/exit_code", String(code)])
        #expect(sandbox.result.status == Int32(code), "\(sandbox.result.stderr)")
        #expect(sandbox.result.stderr.isEmpty)
    }

    @Test func nullDereferenceEndsWithStatus139AndNoHostCrash() throws {
        let sandbox = try SandboxRun(["/bin/segfault"])
        #expect(sandbox.result.status == 139)
        #expect(sandbox.result.stdout == "about to fault\n")
        // The fault is the application's: runsc itself reports nothing and does not crash.
        #expect(sandbox.result.stderr.isEmpty, "\(sandbox.result.stderr)")
    }

    @Test(arguments: [(SIGTERM, Int32(143)), (SIGINT, Int32(130))])
    func aSpinningProgramIsStoppedBySignalsToRunsc(_ signal: Int32, _ expected: Int32) throws {
        let sandbox = try SandboxRun(["/bin/spin"], start: false)
        let running = try sandbox.start()
        try running.waitForOutput("spinning\n", timeout: 20)
        kill(running.process.processIdentifier, signal)
        let result = try running.finish(timeout: 20)
        #expect(result.status == expected, "\(result.stderr)")
    }

    @Test func debugLogsACountPerSyscall() throws {
        let sandbox = try SandboxRun(["/bin/hello"], debug: true)
        #expect(sandbox.result.status == 0)
        #expect(sandbox.result.stderr.contains("syscall write: 1"), "\(sandbox.result.stderr)")
        #expect(sandbox.result.stderr.contains("syscall exit_group: 1"))
    }

    @Test func aMissingExecutableIsAClearError() throws {
        let sandbox = try SandboxRun(["no-such-program"])
        #expect(sandbox.result.isCleanError, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stderr.contains("no-such-program"))
    }

    @Test func aFileThatIsNotELFIsAClearError() throws {
        let sandbox = try SandboxRun(["/bin/script"], files: ["bin/script": "echo not an ELF\n"], executable: ["bin/script"])
        #expect(sandbox.result.isCleanError, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stderr.contains("ENOEXEC"))
    }
}

/// Debian's busybox-static applets give the same output in the sandbox as natively.
@Suite struct BusyboxAppletTests {
    static let passwd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"

    static let applets: [[String]] = [
        ["echo", "hello", "from", "busybox"],
        ["wc", "etc/passwd"],
        ["sha256sum", "etc/passwd"],
        ["sort", "-r", "etc/passwd"],
        ["head", "-n", "1", "etc/passwd"],
        ["sed", "s/root/ROOT/g", "etc/passwd"],
        ["grep", "daemon", "etc/passwd"],
        ["cat", "etc/passwd"],
        ["ls", "-ln", "etc"],
    ]

    @Test(arguments: applets)
    func appletOutputMatchesANativeRun(_ arguments: [String]) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox"] + arguments, files: ["etc/passwd": Self.passwd], busybox: true)
        let native = try Fixtures.run(Fixtures.busybox, arguments, in: sandbox.bundle + "/rootfs")
        #expect(sandbox.result.status == native.status, "\(sandbox.result.stderr)")
        #expect(sandbox.result.stdout == native.stdout)
    }

    @Test func shellExitStatusPassesThrough() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox", "sh", "-c", "exit 7"], busybox: true)
        #expect(sandbox.result.status == 7, "\(sandbox.result.stderr)")
    }
}

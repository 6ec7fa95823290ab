import Foundation
import Testing

/// Fixtures for syscalls busybox applets tripped over (futex from glibc's
/// pthread_once, chroot, ioprio_get, mknod, fallocate, capget), compared with
/// a native run, and the applets themselves.
@Suite struct SyscallFixtureTests {
    /// Runs fixture `name` (copied into the rootfs's /bin) in a sandbox.
    static func runInSandbox(_ name: String) throws -> RunscProcess.Result {
        let sandbox = try SandboxRun(["/bin/" + name], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name),
                                         toPath: sandbox.bundle + "/rootfs/bin/" + name)
        return try sandbox.start().finish(timeout: 60)
    }

    /// Runs fixture `name` in the sandbox and natively: same status, same
    /// output, and the output ends with "done" (the fixture ran to its end).
    static func expectMatchesNativeRun(_ name: String) throws {
        let result = try runInSandbox(name)
        let native = try Fixtures.runNatively(name)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }

    @Test(arguments: ["futex_chroot", "mknod_cases", "fallocate_cases", "proc_cases", "fault_straddle"])
    func fixtureMatchesANativeRun(_ name: String) throws {
        let result = try Self.runInSandbox(name)
        let native = try Fixtures.runNatively(name)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Inputs that used to trap the Sentry and kill the container (issue 8):
    /// /proc/self after a file mapping, lseek past INT64_MAX, mmap/mprotect
    /// with unknown prot bits, a pipe read into a faulting buffer.
    @Test func inputsThatUsedToCrashTheSandboxMatchANativeRun() throws {
        let result = try Self.runInSandbox("crash_regressions")
        let native = try Fixtures.runNatively("crash_regressions")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }

    /// close_range (CLOSE_RANGE_UNSHARE from a thread too), utimes,
    /// futimesat, utime, preadv2, pwritev2, sync_file_range and mincore, in
    /// a tmpfs and in a writable host directory, against a native run.
    @Test(arguments: ["/tmp", "/data"])
    func moreFileCallsMatchANativeRun(_ directory: String) throws {
        let nativeDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("more-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: nativeDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: nativeDirectory) }
        let sandbox = try SandboxRun(["/bin/more_file_cases", directory], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("more_file_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/more_file_cases")
        if directory == "/data" { try sandbox.makeRootfsWritable(directory: directory) }
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively("more_file_cases", [nativeDirectory])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }

    /// files_cases in a tmpfs (/tmp) and in a writable host directory of the rootfs,
    /// against a native run in the host's /tmp.
    @Test(arguments: [("/tmp", false), ("/data", true)])
    func fileCallsMatchANativeRun(_ directory: String, hostDirectory: Bool) throws {
        let name = "files_cases"
        // tmpfs stores user attributes, as the host's /tmp does; hostfs has none.
        let extra = hostDirectory ? [] : ["stored-xattrs"]
        let sandbox = try SandboxRun(["/bin/" + name, directory] + extra, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: sandbox.bundle + "/rootfs/bin/" + name)
        let nativeDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("files-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: nativeDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: nativeDirectory) }
        if hostDirectory {
            try sandbox.makeRootfsWritable(directory: directory)
            #expect(mkfifo(sandbox.bundle + "/rootfs" + directory + "/existing-fifo", 0o644) == 0)
            #expect(mkfifo(nativeDirectory + "/existing-fifo", 0o644) == 0)
        }
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively(name, [nativeDirectory] + extra)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    @Test func appletsThatUsedToAbortOnFutexRun() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let hostid = try SandboxRun(["/bin/busybox", "hostid"], busybox: true).result
        #expect(hostid.status == 0, "\(hostid.stderr)")
        #expect(hostid.stdout.count == 9 && UInt32(hostid.stdout.dropLast(), radix: 16) != nil, "\(hostid.stdout)")
        let ionice = try SandboxRun(["/bin/busybox", "ionice"], busybox: true).result
        #expect(ionice.status == 0, "\(ionice.stderr)")
        #expect(ionice.stdout == "none: prio 0\n")
    }

    /// capget and PR_CAP_AMBIENT show the default spec's capabilities.
    @Test func setprivDumpsTheSpecsCapabilities() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let result = try SandboxRun(["/bin/busybox", "setpriv", "--dump"], busybox: true).result
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Inheritable capabilities: [none]\nAmbient capabilities: [none]\n"),
                "\(result.stdout)")
        #expect(result.stdout.hasSuffix("Capability bounding set: kill,net_bind_service,audit_write\n"))
    }

    /// The default spec grants no CAP_SYS_CHROOT.
    @Test func chrootWithoutTheCapabilityIsRefused() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let result = try SandboxRun(["/bin/busybox", "chroot", "/", "/bin/busybox", "true"], busybox: true).result
        #expect(result.status == 1)
        #expect(result.stderr.contains("Operation not permitted"), "\(result.stderr)")
    }
}

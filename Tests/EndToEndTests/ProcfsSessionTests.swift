import Foundation
import Testing

/// What a program inside the sandbox sees under /proc: directory listings,
/// the mount table and the per-process statistics ps and df parse.
@Suite struct ProcfsSessionTests {
    func busybox(_ arguments: String...) throws -> RunscProcess.Result {
        let sandbox = try SandboxRun(["/bin/busybox"] + arguments, files: ["etc/passwd": BusyboxAppletTests.passwd],
                                     busybox: true)
        return sandbox.result
    }

    var hasBusybox: Bool { FileManager.default.isExecutableFile(atPath: Fixtures.busybox) }

    @Test func procDirectoriesListTheirEntries() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let result = try busybox("ls", "/proc", "/proc/1", "/proc/self/fd")
        #expect(result.status == 0, "\(result.stderr)")
        let names = Set(result.stdout.split(separator: "\n").map(String.init))
        for name in ["1", "self", "meminfo", "mounts", "uptime", "cmdline", "exe", "fd", "stat", "statm", "0", "2"] {
            #expect(names.contains(name), "\(name) missing from \(result.stdout)")
        }
    }

    /// /proc/[pid] belongs to the process's user, so a non-root process may
    /// list its own fd/; each link's mode says how the file is open.
    @Test func aNonRootProcessListsItsOwnDescriptors() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox", "ls", "-ln", "/proc/self/fd", "/proc/self/environ"], user: 1000,
                                     files: ["etc/passwd": "me:x:1000:1000::/home/me:/bin/sh\n"], busybox: true)
        let result = sandbox.result
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            .filter { $0.count > 2 }
        #expect(lines.contains { $0.first == "-r--------" && $0[2] == "1000" && $0.last == "/proc/self/environ" },
                "\(result.stdout)")
        #expect(lines.contains { $0.first == "lr-x------" && $0[2] == "1000" && $0.contains("0") })
        #expect(lines.contains { $0.first == "l-wx------" && $0[2] == "1000" && $0.contains("1") })
    }

    @Test func psListsTheInitProcess() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let result = try busybox("ps")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.first?.first == "PID")
        #expect(lines.dropFirst().contains { $0.first == "1" && $0.contains("root") && $0.last == "ps" },
                "\(result.stdout)")
    }

    @Test func topAndThreadListingsShowTheInitProcess() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let top = try busybox("top", "-b", "-n", "1")
        #expect(top.status == 0, "\(top.stderr)")
        #expect(top.stdout.hasPrefix("Mem: "), "\(top.stdout)")
        #expect(top.stdout.contains("/bin/busybox top -b -n 1"))
        let threads = try busybox("ps", "-T")
        #expect(threads.stdout.contains("/bin/busybox ps -T"), "\(threads.stdout)")
        let listing = try busybox("ls", "/proc/1/task", "/proc/self/task/1")
        #expect(listing.stdout.hasPrefix("/proc/1/task:\n1\n"), "\(listing.stdout)")
        #expect(listing.stdout.contains("\nstat\n"))
        let stat = try busybox("cat", "/proc/stat")
        let lines = stat.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("cpu  ") == true, "\(stat.stdout)")
        #expect(lines.contains { $0.hasPrefix("btime ") })
    }

    @Test func sysctlAndEnvironShowTheContainersNames() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sysctl = try busybox("sysctl", "kernel.hostname", "kernel.ostype")
        #expect(sysctl.status == 0, "\(sysctl.stderr)")
        #expect(sysctl.stdout == "kernel.hostname = runsc\nkernel.ostype = Linux\n")
        let environ = try busybox("cat", "/proc/self/environ")
        #expect(environ.stdout == "PATH=/usr/local/bin:/usr/bin:/bin\0HOME=/root\0",
                "\(environ.stdout.debugDescription)")
        let filesystems = try busybox("cat", "/proc/filesystems")
        #expect(filesystems.stdout.contains("nodev\tproc\n"))
    }

    @Test func mountsListTheContainerTreeAndDfReadsThem() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let mounts = try busybox("cat", "/proc/mounts", "/proc/self/mountinfo")
        #expect(mounts.status == 0, "\(mounts.stderr)")
        #expect(mounts.stdout.contains("proc /proc proc rw 0 0\n"), "\(mounts.stdout)")
        // The session's /tmp is mounted nosuid,nodev; mounts show the spec's flags as Linux does.
        #expect(mounts.stdout.contains("tmpfs /tmp tmpfs rw,nosuid,nodev 0 0\n"))
        #expect(mounts.stdout.contains(" / / ro - 9p none ro\n"))
        let df = try busybox("df")
        #expect(df.status == 0, "\(df.stderr)")
        #expect(df.stdout.split(separator: "\n").contains { $0.hasSuffix(" /tmp") }, "\(df.stdout)")
        let mount = try busybox("mount")
        #expect(mount.stdout.contains("tmpfs on /tmp type tmpfs (rw,nosuid,nodev)\n"), "\(mount.stdout)")
    }

    @Test func statFilesHaveLinuxsLayout() throws {
        try #require(hasBusybox, "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let result = try busybox("cat", "/proc/self/stat", "/proc/self/statm", "/proc/uptime", "/proc/loadavg",
                                 "/proc/version")
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        try #require(lines.count == 5, "\(result.stdout)")
        #expect(lines[0].count == 52)
        // R, as on Linux: cat is running while it reads its own stat.
        #expect(Array(lines[0].prefix(4)) == ["1", "(busybox)", "R", "0"])
        #expect(lines[1].count == 7 && lines[1].allSatisfy { UInt64($0) != nil })
        #expect(lines[2].count == 2 && lines[2].allSatisfy { Double($0) != nil })
        #expect(lines[3].count == 5 && lines[3][3] == "1/1")
        #expect(lines[4].starts(with: ["Linux", "version"]))
    }
}

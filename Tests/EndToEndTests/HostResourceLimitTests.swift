import Foundation
import Testing

/// One container must not exhaust what the host gives the sandbox: host
/// file descriptors (a walk over a large rootfs) and memory (the spec's
/// memory limit, tmpfs sizes).
@Suite(.serialized) struct HostResourceLimitTests {
    /// More than the sandbox's host RLIMIT_NOFILE here (20,000; runsc
    /// inherits the test's): directories walked, files mapped.
    static let directoryCount = 21_000

    /// A rootfs directory `many` with `directoryCount` subdirectories, the
    /// first eight holding a file `probe`.
    static func makeManyDirectories(in rootfs: String) throws {
        let many = rootfs + "/many"
        try FileManager.default.createDirectory(atPath: many, withIntermediateDirectories: true)
        for index in 0..<directoryCount {
            guard mkdir(many + "/d\(index)", 0o755) == 0 else { throw SetupError("mkdir d\(index): \(errno)") }
            if index < 8 { _ = FileManager.default.createFile(atPath: many + "/d\(index)/probe", contents: Data()) }
        }
    }

    @Test func walkingMoreDirectoriesThanTheHostFDLimitWorksAndCheckpoints() throws {
        let session = try CheckpointSession(["/bin/dir_walk", "/many", "wait"])
        let rootfs = session.bundle + "/rootfs"
        try FileManager.default.copyItem(atPath: try Fixtures.binary("dir_walk"), toPath: rootfs + "/bin/dir_walk")
        try Self.makeManyDirectories(in: rootfs)
        let native = try Fixtures.runNatively("dir_walk", [rootfs + "/many"])
        #expect(native.status == 0)
        #expect(native.stdout == "entries: \(Self.directoryCount + 8) failures: 0\n")

        try session.runDetached("c1", output: "before")
        try session.waitForLines(2, in: "before", timeout: 240)
        #expect(session.lines("before") == [native.stdout.dropLast().description, "ready"],
                "\(session.errors(of: "before"))")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")

        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("after") == ["after: \(Self.directoryCount + 8) failures: 0"])
    }

    /// A bundle running `memory_touch arguments...` under `memoryLimit`
    /// bytes, with `tmpfs` mounted at /data with these options.
    static func runMemoryTouch(_ arguments: [String], memoryLimit: Int? = nil,
                               tmpfsOptions: [String]? = nil) throws -> RunscProcess.Result {
        try runFixture("memory_touch", arguments, memoryLimit: memoryLimit, tmpfsOptions: tmpfsOptions)
    }

    static func runFixture(_ name: String, _ arguments: [String], memoryLimit: Int? = nil,
                           tmpfsOptions: [String]? = nil) throws -> RunscProcess.Result {
        let run = try SandboxRun(["/bin/" + name] + arguments, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: run.bundle + "/rootfs/bin/" + name)
        return try start(run, memoryLimit: memoryLimit, tmpfsOptions: tmpfsOptions)
    }

    /// Runs `run` with the spec's memory limit and a tmpfs at /data.
    static func start(_ run: SandboxRun, memoryLimit: Int? = nil,
                      tmpfsOptions: [String]? = nil) throws -> RunscProcess.Result {
        let configPath = run.bundle + "/config.json"
        let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        guard var spec = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              var linux = spec["linux"] as? [String: Any], var mounts = spec["mounts"] as? [[String: Any]] else {
            throw SetupError("config.json has no linux section")
        }
        if let memoryLimit { linux["resources"] = ["memory": ["limit": memoryLimit]] }
        if let tmpfsOptions {
            mounts.append(["destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": tmpfsOptions])
        }
        spec["linux"] = linux
        spec["mounts"] = mounts
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: configPath))
        return try run.start().finish(timeout: 120)
    }

    @Test func touchingMoreThanTheMemoryLimitIsOOMKilledAndLessRuns() throws {
        let limit = 256 << 20
        let small = try Self.runMemoryTouch(["anon", "128"], memoryLimit: limit)
        #expect(small.status == 0, "\(small.stderr)")
        #expect(small.stdout.hasSuffix("touched 128 MiB\n"))
        let large = try Self.runMemoryTouch(["anon", "512"], memoryLimit: limit)
        #expect(large.status == 137, "\(large.stdout)")
        #expect(large.stdout.hasPrefix("mapped 512 MiB\n"), "mmap overcommits, as Linux does")
        #expect(!large.stdout.contains("touched 256 MiB"))
    }

    @Test func writingTmpfsPastTheMemoryLimitIsOOMKilled() throws {
        let result = try Self.runMemoryTouch(["tmpfs", "/data/big", "512"], memoryLimit: 128 << 20,
                                             tmpfsOptions: ["nosuid"])
        #expect(result.status == 137, "\(result.stdout)")
        #expect(!result.stdout.contains("wrote"))
    }

    /// Runs `body` with the path of a host tmpfs mounted with `options`
    /// (as root); nil when it cannot be mounted here.
    static func withHostTmpfs<T>(_ options: String, _ body: (String?) throws -> T) throws -> T {
        guard getuid() == 0 else { return try body(nil) }
        let mountpoint = FileManager.default.temporaryDirectory.appendingPathComponent("tmpfs-\(UUID())").path
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mountpoint) }
        guard try Fixtures.run("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", mountpoint]).status == 0 else {
            return try body(nil)
        }
        defer { _ = try? Fixtures.run("/bin/umount", [mountpoint]) }
        return try body(mountpoint)
    }

    /// The same write on a host tmpfs of the same size (as root), or Linux's known answer.
    @Test func tmpfsSizeStopsWritesWithENOSPCAsLinuxTmpfs() throws {
        let sandbox = try Self.runMemoryTouch(["tmpfs", "/data/big", "1024"], tmpfsOptions: ["nosuid", "size=64m"])
        let expected = try Self.withHostTmpfs("size=64m") { mountpoint in
            guard let mountpoint else { return "write after \(64 << 20) bytes: ENOSPC\n" }
            let native = try Fixtures.runNatively("memory_touch", ["tmpfs", mountpoint + "/big", "1024"])
            #expect(native.status == 1)
            return native.stdout
        }
        #expect(sandbox.status == 1)
        #expect(sandbox.stdout == expected)
    }

    /// MAP_SHARED of a tmpfs file maps the file's own pages, as on Linux.
    @Test func aSharedMappingOfATmpfsFileIsCoherentWithReadAndWrite() throws {
        let sandbox = try Self.runFixture("tmpfs_mmap", ["/data"], tmpfsOptions: ["size=1m"])
        let native = try Self.withHostTmpfs("size=1m") { mountpoint in
            try Fixtures.runNatively("tmpfs_mmap", [mountpoint ?? "/dev/shm"])
        }
        #expect(native.status == 135 && native.stdout.contains("pread reads: stored"))
        #expect(sandbox.status == native.status)
        #expect(sandbox.stdout == native.stdout)
    }

    @Test func tmpfsInodeCountStopsCreationsWithENOSPCAsLinuxTmpfs() throws {
        let names = ["a", "b", "c"]
        let run = try SandboxRun(["/bin/busybox", "mkdir"] + names.map { "/data/" + $0 }, busybox: true, start: false)
        let sandbox = try Self.start(run, tmpfsOptions: ["nr_inodes=3"])
        let native = try Self.withHostTmpfs("nr_inodes=3") { mountpoint -> RunscProcess.Result? in
            guard let mountpoint else { return nil }
            return try Fixtures.run(Fixtures.busybox, ["mkdir"] + names.map { mountpoint + "/" + $0 })
        }
        #expect(sandbox.status == 1)
        #expect(sandbox.stderr.contains("'/data/c': No space left on device"), "\(sandbox.stderr)")
        if let native {
            #expect(native.status == sandbox.status)
            #expect(native.stderr.contains("/c': No space left on device"), "\(native.stderr)")
        }
    }

    /// size= as a share of RAM gives the same statfs figures as a host tmpfs mounted so.
    @Test func tmpfsSizeInPercentShowsInStatfsAsLinuxTmpfs() throws {
        let run = try SandboxRun(["/bin/busybox", "df", "-k", "/data"], busybox: true, start: false)
        let sandbox = try Self.start(run, tmpfsOptions: ["size=10%"])
        #expect(sandbox.status == 0, "\(sandbox.stderr)")
        let figures = { (output: String) in output.split(separator: "\n").last?.split(separator: " ").dropLast().dropFirst() }
        let native = try Self.withHostTmpfs("size=10%") { mountpoint -> RunscProcess.Result? in
            guard let mountpoint else { return nil }
            return try Fixtures.run(Fixtures.busybox, ["df", "-k", mountpoint])
        }
        if let native {
            #expect(figures(sandbox.stdout).map(Array.init) == figures(native.stdout).map(Array.init))
        }
    }

    /// Mappings that outlive their FDs hold no host FD: 21,000 of them (more
    /// than the sandbox's host limit, far more than the program's
    /// RLIMIT_NOFILE of 1024) work as natively, and the program can still open files.
    @Test func mappingsWhoseFDsWereClosedHoldNoHostFDs() throws {
        let count = "\(Self.directoryCount)"
        let run = try SandboxRun(["/bin/mmap_many", "/mapped", count], start: false)
        let rootfs = run.bundle + "/rootfs"
        try FileManager.default.copyItem(atPath: try Fixtures.binary("mmap_many"), toPath: rootfs + "/bin/mmap_many")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: rootfs + "/mapped"))
        let native = try Fixtures.runNatively("mmap_many", [rootfs + "/mapped", count])
        #expect(native.status == 0 && native.stdout.hasSuffix("open ok\n"))
        let sandbox = try run.start().finish(timeout: 300)
        #expect(sandbox.status == 0, "\(sandbox.stderr)")
        #expect(sandbox.stdout == native.stdout)
    }
}

import Foundation
import Testing

/// One container must not exhaust what the host gives the sandbox: host
/// file descriptors (a walk over a large rootfs) and memory (the spec's
/// memory limit, tmpfs sizes).
@Suite(.serialized) struct HostResourceLimitTests {
    /// More directories than the sandbox's host RLIMIT_NOFILE here (20,000).
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
}

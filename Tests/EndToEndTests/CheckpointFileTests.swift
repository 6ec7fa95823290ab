import Foundation
import Testing

/// Files in states a checkpoint must carry across a restore: a rootfs file the
/// program writes through a shared mapping, FIFOs, open files and directories
/// that were deleted, extended attributes. Each prints the lines of a straight
/// native run.
@Suite(.serialized) struct CheckpointFileTests {
    static let original = "0123456789abcdefghijklmnopqrstuvwxyz\n"

    /// `ckpt_files MODE DIRECTORY` run natively (in a scratch directory), then in the
    /// sandbox checkpointed at "ready" and restored: the lines before plus after must
    /// be the native run's. `atCheckpoint` looks at the paused container's files first.
    @discardableResult
    static func expectRestoredRunMatchesNative(_ mode: String, in directory: String, hostDirectory: Bool,
                                               atCheckpoint: (CheckpointSession) throws -> Void = { _ in })
        throws -> CheckpointSession {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("\(mode)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("ckpt_files", [mode, scratch])
        #expect(native.status == 0, "\(native.stdout)")

        let session = try CheckpointSession(["/bin/ckpt_files", mode, directory])
        if hostDirectory { try session.makeRootfsWritable(directory: directory) }
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        try atCheckpoint(session)
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
        return session
    }

    @Test func aRootfsFileWrittenThroughMapSharedRestores() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("mapshared-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: scratch, contents: Data(Self.original.utf8))
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("ckpt_files", ["mapshared", scratch])
        #expect(native.status == 0, "\(native.stdout)")

        let session = try CheckpointSession(["/bin/ckpt_files", "mapshared", "/data/mapped"])
        try session.makeRootfsWritable(directory: "data")
        let mapped = session.bundle + "/rootfs/data/mapped"
        FileManager.default.createFile(atPath: mapped, contents: Data(Self.original.utf8))
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
        let contents = try String(contentsOfFile: mapped, encoding: .utf8)
        #expect(contents == (try String(contentsOfFile: scratch, encoding: .utf8)))
    }

    /// A FIFO on tmpfs and on a host directory, bytes in flight, open ends and all.
    @Test(arguments: [("/tmp", false), ("/data", true)])
    func aFifoWithBytesInFlightRestores(_ directory: String, hostDirectory: Bool) throws {
        try Self.expectRestoredRunMatchesNative("fifo", in: directory, hostDirectory: hostDirectory) { session in
            if hostDirectory {
                #expect(!FileManager.default.fileExists(atPath: session.bundle + "/rootfs" + directory + "/fifo"),
                        "the FIFO is the sandbox's alone")
            }
        }
    }

    /// A host file deleted while open travels in the image (CRIU's ghost files) and
    /// comes back with its bytes, offset and mode; tmpfs files are saved whole anyway.
    @Test(arguments: [("/data", true), ("/tmp", false)])
    func aDeletedOpenFileRestoresWithItsContents(_ directory: String, hostDirectory: Bool) throws {
        let session = try Self.expectRestoredRunMatchesNative("ghost", in: directory, hostDirectory: hostDirectory)
        if hostDirectory {
            let left = try FileManager.default.contentsOfDirectory(atPath: session.bundle + "/rootfs" + directory)
            #expect(left.isEmpty, "the restored file has no name on the host: \(left)")
        }
    }

    /// A tmpfs file's user attribute is saved with the filesystem.
    @Test func aTmpfsExtendedAttributeRestores() throws {
        try Self.expectRestoredRunMatchesNative("xattr", in: "/tmp", hostDirectory: false)
    }

    /// An open of a FIFO waiting for a writer is interrupted by the checkpoint
    /// and waits again after the restore (it never returns without a writer).
    @Test func anOpenWaitingForAFifoWriterIsCheckpointedAndWaitsAgain() throws {
        let session = try CheckpointSession(["/bin/ckpt_files", "fifoblock", "/tmp"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(200_000)
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let restored = try session.restoreDetached("c2", image: "image", output: "after")
        #expect(restored.status == 0, "\(restored.stderr)")
        usleep(500_000)
        #expect(try session.status("c2") == "running")
        #expect(session.lines("before") == ["ready"])
        #expect(session.lines("after").isEmpty, "\(session.read("after"))")
    }

    /// A removed directory held open is restored as one: empty, no links, nothing can be made in it.
    @Test(arguments: [("/data", true), ("/tmp", false)])
    func aDeletedOpenDirectoryRestores(_ directory: String, hostDirectory: Bool) throws {
        try Self.expectRestoredRunMatchesNative("deleteddir", in: directory, hostDirectory: hostDirectory)
    }

    /// Above the image's budget for deleted files the checkpoint is refused, saying
    /// why, and the container runs on.
    @Test func aDeletedFileOverTheLimitIsRefusedClearly() throws {
        let session = try CheckpointSession(["/bin/ckpt_files", "ghost", "/data", "65"])
        try session.makeRootfsWritable(directory: "data")
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 1)
        #expect(saved.isCleanError, "\(saved.stderr)")
        #expect(saved.stderr.contains("/data/ghost") && saved.stderr.contains("at most 64 MiB"), "\(saved.stderr)")
        #expect(try session.status("c1") == "running")
        #expect(!FileManager.default.fileExists(atPath: session.path("image")))
    }
}

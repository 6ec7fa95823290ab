import Foundation
import Testing

/// Files in states a checkpoint must carry across a restore: a rootfs file
/// the program writes through a shared mapping, an open file that was deleted.
/// Each prints the lines of a straight native run.
@Suite(.serialized) struct CheckpointFileTests {
    static let original = "0123456789abcdefghijklmnopqrstuvwxyz\n"

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
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("fifo-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("ckpt_files", ["fifo", scratch])
        #expect(native.status == 0, "\(native.stdout)")

        let session = try CheckpointSession(["/bin/ckpt_files", "fifo", directory])
        if hostDirectory { try session.makeRootfsWritable(directory: directory) }
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        if hostDirectory {
            #expect(!FileManager.default.fileExists(atPath: session.bundle + "/rootfs" + directory + "/fifo"),
                    "the FIFO is the sandbox's alone")
        }
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
    }

    /// A host file deleted while open travels in the image (CRIU's ghost files) and
    /// comes back with its bytes, offset and mode; tmpfs files are saved whole anyway.
    @Test(arguments: [("/data", true), ("/tmp", false)])
    func aDeletedOpenFileRestoresWithItsContents(_ directory: String, hostDirectory: Bool) throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ghost-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("ckpt_files", ["ghost", scratch])
        #expect(native.status == 0, "\(native.stdout)")

        let session = try CheckpointSession(["/bin/ckpt_files", "ghost", directory])
        if hostDirectory { try session.makeRootfsWritable(directory: directory) }
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
        if hostDirectory {
            let left = try FileManager.default.contentsOfDirectory(atPath: session.bundle + "/rootfs" + directory)
            #expect(left.isEmpty, "the restored file has no name on the host: \(left)")
        }
    }

    /// A tmpfs file's user attribute is saved with the filesystem.
    @Test func aTmpfsExtendedAttributeRestores() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("xattr-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("ckpt_files", ["xattr", scratch])
        #expect(native.status == 0, "\(native.stdout)")

        let session = try CheckpointSession(["/bin/ckpt_files", "xattr", "/tmp"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
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
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("gone-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let native = try Fixtures.runNatively("ckpt_files", ["deleteddir", scratch])
        #expect(native.status == 0, "\(native.stdout)")

        let session = try CheckpointSession(["/bin/ckpt_files", "deleteddir", directory])
        if hostDirectory { try session.makeRootfsWritable(directory: directory) }
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
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

import Foundation
import Testing

/// `runsc checkpoint` and `runsc restore` as a user runs them: the checkpoint
/// invariant (a program checkpointed and restored prints exactly the lines
/// of a straight run), programs blocked in a system call, tmpfs contents,
/// and the refusals that must leave nothing half-done.
@Suite(.serialized) struct CheckpointTests {
    /// 24 lines, 80 ms apart (room for a checkpoint on a loaded machine), over 4 MiB of memory.
    static let counter = ["/bin/ckpt_counter", "24", "80", "4"]

    static func straightRun() throws -> [String] {
        let native = try Fixtures.runNatively("ckpt_counter", Array(counter.dropFirst()))
        #expect(native.status == 0)
        return native.stdout.split(separator: "\n").map(String.init)
    }

    @Test(arguments: [("none", 3), ("lz4", 6), ("lz4", 12), ("zstd", 9)])
    func restoredCounterContinuesWhereItStopped(compression: String, after lines: Int) throws {
        let expected = try Self.straightRun()
        let session = try CheckpointSession(Self.counter)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(lines, in: "before")
        let saved = try session.checkpoint("c1", image: "image", "--compression", compression)
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.status("c1") == "stopped")
        #expect(try session.wait("c1") == 137)
        let manifest = session.read("image/manifest.json")
        #expect(manifest.contains("\"\(compression)\""))
        #expect(manifest.contains("xsave-features"))

        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
    }

    @Test func aLogTheContainerAppendsToStaysWholeAcrossARestore() throws {
        let expected = try Self.straightRun()
        let session = try CheckpointSession(Self.counter)
        try session.runDetached("c1", output: "log")
        try session.waitForLines(7, in: "log")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "log", append: true) == 0)
        #expect(!session.read("log").contains("\0"), "no NUL bytes where a saved offset would have left a gap")
        #expect(session.lines("log") == expected)
    }

    @Test func migrationRestoresUnderAnotherRootAfterTheOriginalIsGone() throws {
        let expected = try Self.straightRun()
        let session = try CheckpointSession(Self.counter)
        try session.runDetached("original", output: "before")
        try session.waitForLines(5, in: "before")
        #expect(try session.checkpoint("original", image: "image").status == 0)
        #expect(try session.runsc("delete", "original").status == 0)
        try FileManager.default.moveItem(atPath: session.path("image"), toPath: session.path("copied"))
        let status = try session.restore("elsewhere", image: "copied", output: "after", root: session.path("other-root"))
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
    }

    @Test func leaveRunningKeepsTheOriginalAndTheCopyAlsoFinishes() throws {
        let expected = try Self.straightRun()
        let session = try CheckpointSession(Self.counter)
        try session.runDetached("c1", output: "original")
        try session.waitForLines(8, in: "original")
        let saved = try session.checkpoint("c1", image: "image", "--leave-running")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.wait("c1") == 0)
        #expect(session.lines("original") == expected)

        #expect(try session.restore("c2", image: "image", output: "copy") == 0)
        let copy = session.lines("copy")
        #expect(copy.count >= 2 && copy.count < expected.count, "\(copy)")
        #expect(Array(expected.suffix(copy.count)) == copy)
    }

    @Test func anImageRestoresTwiceAndARestoredContainerCheckpointsAgain() throws {
        let expected = try Self.straightRun()
        let session = try CheckpointSession(Self.counter)
        try session.runDetached("c1", output: "first")
        try session.waitForLines(4, in: "first")
        #expect(try session.checkpoint("c1", image: "one").status == 0)

        let restored = try session.restoreDetached("c2", image: "one", output: "second")
        #expect(restored.status == 0, "\(restored.stderr)")
        try session.waitForLines(4, in: "second")
        let again = try session.checkpoint("c2", image: "two", "--compression", "zstd")
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try session.restore("c3", image: "two", output: "third") == 0)
        #expect(session.lines("first") + session.lines("second") + session.lines("third") == expected)

        #expect(try session.restore("c4", image: "one", output: "fourth") == 0)
        #expect(session.lines("first") + session.lines("fourth") == expected)
    }

    /// The restored program runs while its 192 MiB still load in the
    /// background: what it saved reads back as saved, and memory it maps
    /// afresh over saved memory reads as zero (a late load must not land there).
    @Test func aProgramRunningWhileItsMemoryLoadsSeesItAsSaved() throws {
        let args = ["/bin/ckpt_remap", "80", "128", "10"]
        let native = try Fixtures.runNatively("ckpt_remap", Array(args.dropFirst()))
        #expect(native.status == 0)
        let expected = native.stdout.split(separator: "\n").map(String.init)
        #expect(expected.count == 81 && expected.dropFirst().allSatisfy { $0.hasSuffix(" ok") }, "\(expected)")
        let session = try CheckpointSession(args)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(3, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        let log = session.path("restore.log")
        let status = try session.launch(["--log", log, "--debug", "restore", "--image-path", session.path("image"),
                                         "--bundle", session.bundle, "c2"], output: "after").wait()
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logged.contains("pages.img checks"), "the restore's phases are in the --debug log")
        #expect(logged.contains("syscall mmap: "), "a restored sandbox counts syscalls under --debug too")
        // A checkpoint right after a restore waits for the rest of the memory.
        let restored = try session.restoreDetached("c3", image: "image", output: "third")
        #expect(restored.status == 0, "\(restored.stderr)")
        let again = try session.checkpoint("c3", image: "again")
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try session.restore("c4", image: "again", output: "fourth") == 0)
        #expect(session.lines("before") + session.lines("third") + session.lines("fourth") == expected)
    }

    @Test func aProgramInNanosleepSleepsOnlyWhatRemained() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "sleep", "3000"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        let started = Date()
        #expect(try session.restore("c2", image: "image", output: "after") == 0)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(session.lines("before") == ["ready"])
        #expect(session.lines("after") == ["slept"])
    }

    /// poll(2) restarts through restart_syscall with its deadline kept, ppoll
    /// with the time left written back into its timespec: the restored
    /// program times out once, and not before its full timeout.
    @Test(arguments: ["poll", "ppoll"])
    func aProgramInPollWaitsOnlyWhatRemained(_ call: String) throws {
        let session = try CheckpointSession(["/bin/ckpt_block", call, "3000"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        let started = Date()
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(session.lines("before") == ["ready"])
        #expect(session.lines("after") == ["poll returned 0, revents 0, after the timeout"])
    }

    @Test func aProgramReadingAnEmptyPipeIsStillWaitingAfterRestore() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "pipe"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        let restored = try session.restoreDetached("c2", image: "image", output: "after")
        #expect(restored.status == 0, "\(restored.stderr)")
        usleep(500_000)
        #expect(try session.status("c2") == "running")
        #expect(session.lines("after").isEmpty, "the read must not return: \(session.lines("after"))")
        #expect(try session.runsc("kill", "c2", "KILL").status == 0)
        #expect(try session.wait("c2") == 137)
    }

    @Test func aProgramReadingStdinReadsTheRestoringCommandsStdin() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "stdin"])
        let originalInput = Pipe()
        try session.runDetached("c1", output: "before", stdin: originalInput.fileHandleForReading)
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        try originalInput.fileHandleForWriting.close()

        let input = Pipe()
        let restore = try session.launch(["restore", "--image-path", session.path("image"), "--bundle", session.bundle,
                                          "c2"], output: "after", stdin: input.fileHandleForReading)
        usleep(300_000)
        input.fileHandleForWriting.write(Data("hello from the new stdin\n".utf8))
        try input.fileHandleForWriting.close()
        #expect(restore.wait() == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("after") == ["got: hello from the new stdin"])
    }

    @Test func filesWrittenToTmpfsBeforeTheCheckpointAreThereAfter() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "tmpfs"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0)
        #expect(session.lines("after") == ["kept: written before"])
    }

    @Test func aDamagedOrForeignImageIsRefusedAndNoContainerIsLeft() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "sleep", "5000"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        #expect(try session.checkpoint("c1", image: "image").status == 0)

        let damages: [(String, (String) throws -> Void)] = [
            ("truncated pages", { image in try Self.truncate(image + "/pages.img", by: 100) }),
            ("flipped state bit", { image in try Self.flipBit(in: image + "/state.img", at: 200) }),
            ("flipped page bit", { image in try Self.flipBit(in: image + "/pages.img", at: 5000) }),
            ("missing state", { image in try FileManager.default.removeItem(atPath: image + "/state.img") }),
            ("foreign architecture", { image in try Self.replace("\"x86_64\"", with: "\"s390x\"", in: image + "/manifest.json") }),
            ("unknown CPU feature", { image in try Self.replace("\"xsave-size", with: "\"avx1024\",\"xsave-size", in: image + "/manifest.json") }),
        ]
        for (index, (name, damage)) in damages.enumerated() {
            let copy = "damaged\(index)"
            try FileManager.default.copyItem(atPath: session.path("image"), toPath: session.path(copy))
            try damage(session.path(copy))
            let result = try session.restoreDetached("r\(index)", image: copy, output: "r\(index)")
            #expect(result.status == 1, "\(name)")
            #expect(result.stderr.hasPrefix("runsc: ") && result.stderr.contains("restore"), "\(name): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(name): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: session.workspace.stateRoot + "/r\(index)"), "\(name)")
        }
        #expect(try session.runsc("list", "-q").stdout == "c1\n")
    }

    @Test func checkpointToAnUnwritableOrMissingDirectoryFailsAndTheContainerRunsOn() throws {
        let expected = try Self.straightRun()
        let session = try CheckpointSession(Self.counter)
        try session.runDetached("c1", output: "output")
        try session.waitForLines(3, in: "output")
        for target in ["/proc/runsc-image", "/nonexistent-\(UUID().uuidString)/image"] {
            let result = try RunscProcess.run(["--root", session.workspace.stateRoot, "checkpoint",
                                               "--image-path", target, "c1"])
            #expect(result.isCleanError, "\(target): \(result.stderr)")
            #expect(result.stderr.contains(target), "\(result.stderr)")
            #expect(try session.status("c1") == "running")
        }
        #expect(try session.wait("c1") == 0)
        #expect(session.lines("output") == expected)
    }

    /// Needs root to mount a small tmpfs (the end-to-end tests run as root, as the sandbox does).
    @Test(.enabled(if: getuid() == 0))
    func checkpointOfAFullFilesystemFailsAndLeavesNoImage() throws {
        let session = try CheckpointSession(Self.counter)
        let small = session.path("small")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let mount = try Fixtures.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small])
        try #require(mount.status == 0, "mount tmpfs: \(mount.stderr)")
        defer { _ = try? Fixtures.run("/bin/umount", [small]) }
        try session.runDetached("c1", output: "output")
        try session.waitForLines(2, in: "output")
        let result = try session.checkpoint("c1", image: "small/image")
        #expect(result.isCleanError, "\(result.stderr)")
        #expect(try session.status("c1") == "running")
        #expect((try FileManager.default.contentsOfDirectory(atPath: small)).isEmpty, "nothing may be left")
        #expect(try session.wait("c1") == 0)
    }

    private static func truncate(_ path: String, by count: Int) throws {
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        guard Glibc.truncate(path, off_t(max(0, size - count))) == 0 else { throw SetupError("truncate \(path)") }
    }

    private static func flipBit(in path: String, at offset: Int) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let index = min(offset, bytes.count - 1)
        bytes[index] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private static func replace(_ text: String, with replacement: String, in path: String) throws {
        let contents = try String(contentsOfFile: path, encoding: .utf8)
        guard contents.contains(text) else { throw SetupError("\(path) has no \(text)") }
        try contents.replacingOccurrences(of: text, with: replacement).write(toFile: path, atomically: true, encoding: .utf8)
    }
}

import Foundation
import ImageMutation
import State
import Testing

/// Images edited and resealed by an attacker: the restore refuses what the
/// kernel could not have produced, naming the field, and no edit reaches a
/// host file outside the restoring bundle's rootfs.
@Suite struct HostileImageTests {
    /// A container holding a cwd and a dirfd on /QQQQQ, its name rewritten to
    /// `../..` in state.img: the restored container would see the directory
    /// two levels above the rootfs (reading a host file there, creating one).
    @Test func aDirectoryNameLeadingOutOfTheRootfsIsRefusedByName() throws {
        let session = try CheckpointSession(["/bin/ckpt_block", "dirfd", "/QQQQQ"])
        try BusyboxFileAppletTests.setProcess(in: session.bundle + "/config.json",
                                              args: ["/bin/ckpt_block", "dirfd", "/QQQQQ"], cwd: "/")
        let inside = session.bundle + "/rootfs/QQQQQ"
        try FileManager.default.createDirectory(atPath: inside, withIntermediateDirectories: true)
        try "inside\n".write(toFile: inside + "/marker", atomically: false, encoding: .utf8)
        let outside = URL(fileURLWithPath: session.bundle + "/rootfs/../..").standardized.path
        try "host secret\n".write(toFile: outside + "/marker", atomically: false, encoding: .utf8)

        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let checkpoint = try session.checkpoint("c1", image: "image", "--compression", "none")
        try #require(checkpoint.status == 0, "\(checkpoint.stderr)")
        try ImageSealing.reseal(session.path("image"), to: session.path("escaped")) { state in
            let (edited, count) = ImageSealing.replacing("QQQQQ", with: "../..", in: state)
            #expect(count > 0, "state.img must name the directory")
            return edited
        }

        let status = try session.restore("c2", image: "escaped", output: "after")
        let errors = session.errors(of: "after")
        #expect(!session.read("after").contains("host secret"), "the restored container read a host file")
        #expect(!FileManager.default.fileExists(atPath: outside + "/written"), "the restored container wrote a host file")
        #expect(status == 1, "\(session.read("after")) \(errors)")
        #expect(errors.contains("name") && errors.contains("\"../..\" is not a file name"), "\(errors)")

        #expect(try session.restore("c3", image: "image", output: "unchanged") == 0, "\(session.errors(of: "unchanged"))")
        #expect(session.lines("unchanged") == ["marker: inside", "marker: inside", "written: created"])
    }

    /// A sample of the mutation plan's edits of a running counter's image
    /// (`RUNSC_RESTORE_SAMPLES`, 12 by default), each restored by runsc: it
    /// is refused with one error line, or the container runs and ends (any
    /// status: a corrupted register may well fault the program) within 30 s,
    /// the sandbox itself never trapping.
    @Test func sampledMutationsAreRefusedOrRunAndEnd() throws {
        // 16 lines 100 ms apart: room for the checkpoint on a loaded machine.
        let session = try CheckpointSession(["/bin/ckpt_counter", "16", "100", "1"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        try #require(try session.checkpoint("c1", image: "image", "--compression", "none").status == 0)
        let plan = MutationPlan(stream: try StateStream(bytes: try ImageReader(directory: session.path("image")).readState()))
        let samples = ProcessInfo.processInfo.environment["RUNSC_RESTORE_SAMPLES"].flatMap(Int.init) ?? 12
        let step = max(plan.mutations.count / max(samples, 1), 1)
        var refused = 0, ran = 0
        for index in Swift.stride(from: step / 2, to: plan.mutations.count, by: step).prefix(samples) {
            let mutation = plan.mutations[index]
            let name = "m\(index)"
            try ImageSealing.reseal(session.path("image"), to: session.path(name)) { _ in try plan.encoded(mutation) }
            let restore = try session.launch(["--log", session.path(name + ".log"), "restore", "--image-path",
                                              session.path(name), "--bundle", session.bundle, name], output: name + ".out")
            guard let status = restore.wait(timeout: 30) else {
                // A corrupted register may be the counter's own (its limit):
                // a container still printing runs, as it would natively; one
                // that went quiet is stuck.
                let printed = session.lines(name + ".out").count
                let ended = restore.wait(timeout: 1)
                let printing = session.lines(name + ".out").count > printed
                if ended == nil { kill(restore.pid, SIGKILL) }
                _ = restore.wait()
                let log = session.read(name + ".log")
                #expect(!["Fatal error", "fatal signal", "a fault in the sandbox"].contains { log.contains($0) },
                        "\(mutation.label): the sandbox crashed: \(log)")
                if ended != nil || printing {
                    ran += 1
                } else {
                    Issue.record("\(mutation.label): the restored container went quiet and did not end within 30 s")
                }
                continue
            }
            let errors = session.errors(of: name + ".out")
            let log = session.read(name + ".log")
            // A Swift trap prints "Fatal error"; a fault, the fatal-signal line and runsc's "killed by".
            let crashed = ["Fatal error", "fatal signal", "killed by", "a fault in the sandbox"]
                .filter { (errors + log).contains($0) }
            #expect(crashed.isEmpty, "\(mutation.label): the sandbox crashed: \(errors) \(log)")
            if status == 1 && errors.hasPrefix("runsc: ") && errors.contains("cannot restore")
                && errors.split(separator: "\n").count == 1 {
                refused += 1
            } else {
                ran += 1
                #expect(!errors.contains("stale"), "\(mutation.label): \(errors)")
            }
        }
        print("restored mutations: \(refused + ran) of \(plan.mutations.count) sampled: refused \(refused), ran and ended \(ran)")
        #expect(refused + ran > 0)
    }
}

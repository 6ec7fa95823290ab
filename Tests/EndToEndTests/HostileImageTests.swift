import Foundation
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
}

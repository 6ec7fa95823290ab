import Foundation
import Testing

/// `runsc run --debug-save-restore-every N`: a program whose kernel is saved,
/// thrown away and restored every few syscalls prints what it prints
/// natively, and the sandbox reports how many cycles it went through.
@Suite struct SaveRestoreModeTests {
    @Test func aProgramCycledEveryTwoSyscallsMatchesANativeRunAndReportsItsCycles() throws {
        let sandbox = try SandboxRun(["/bin/errno_cases"], start: false)
        let tally = sandbox.workspace.path + "/tally"
        let id = "c\(UInt32.random(in: 0...UInt32.max))"
        let run = try RunningRunsc(
            arguments: ["--root", sandbox.workspace.stateRoot, "run", "--debug-save-restore-every", "2",
                        "--bundle", sandbox.bundle, id],
            scratch: sandbox.workspace.path, cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id],
            environment: ["RUNSC_DEBUG_SAVE_RESTORE_TALLY": tally])
        let result = try run.finish(timeout: 120)
        let native = try Fixtures.runNatively("errno_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        let fields = try String(contentsOfFile: tally, encoding: .utf8).split(separator: " ")
        #expect(fields.count >= 4 && fields[0] == "cycles" && fields[2] == "failed")
        #expect((fields.count >= 2 ? Int(fields[1]) ?? 0 : 0) > 0, "no cycle in \(fields)")
        #expect(fields.count >= 4 && fields[3] == "0", "a cycle failed: \(fields)")
    }

    /// Loopback TCP in a kernel restored in the process of the one it
    /// replaced: the restored listener takes the connects and a closed
    /// one's port is free again (they used to find the discarded kernel's
    /// sockets and hang). A cycle every 3 syscalls, whatever the suite's setting.
    @Test func loopbackConnectionsCycledEveryThreeSyscallsMatchANativeRun() throws {
        let name = "inet_backlog_full"
        let sandbox = try SandboxRun(["/bin/" + name], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: sandbox.bundle + "/rootfs/bin/" + name)
        let tally = sandbox.workspace.path + "/tally"
        let id = "c\(UInt32.random(in: 0...UInt32.max))"
        let run = try RunningRunsc(
            arguments: ["--root", sandbox.workspace.stateRoot, "run", "--debug-save-restore-every", "3",
                        "--bundle", sandbox.bundle, id],
            scratch: sandbox.workspace.path, cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id],
            environment: ["RUNSC_DEBUG_SAVE_RESTORE_TALLY": tally])
        let result = try run.finish(timeout: 60)
        let native = try Fixtures.runNatively(name)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
        let fields = try String(contentsOfFile: tally, encoding: .utf8).split(separator: " ")
        #expect(fields.count >= 4 && (Int(fields[1]) ?? 0) > 0 && fields[3] == "0", "cycles: \(fields)")
    }
}

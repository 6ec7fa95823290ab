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
}

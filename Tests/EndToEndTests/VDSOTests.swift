import Foundation
import Testing

/// The Sentry's vDSO: glibc (static and through ld.so) finds it by
/// AT_SYSINFO_EHDR and reads the clocks without a trap; its clocks agree with
/// the syscalls' and, across a checkpoint and restore, CLOCK_MONOTONIC read
/// through it goes on without going back.
@Suite struct VDSOTests {
    @Test(arguments: ["vdso_cases", "dynamic_vdso_cases"])
    func theVDSOsClocksMatchANativeRun(_ fixture: String) throws {
        let result = try ThreadTests.run(fixture)
        let native = try Fixtures.runNatively(fixture)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
        #expect(result.stdout.hasSuffix("done\n"))
    }

    /// clock_gettime costs under a fiftieth of a trapping getpid in the same
    /// run: only possible if it does not trap. (Natively a syscall is cheap
    /// enough that the ratio stays below that, so there is nothing to compare.)
    @Test(arguments: ["vdso_cases", "dynamic_vdso_cases"])
    func clockGettimeDoesNotTrap(_ fixture: String) throws {
        let result = try ThreadTests.run(fixture, ["fast"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "fast path: yes\n", "\(result.stderr)")
    }

    /// Ticks 80 ms apart, each checking through the vDSO and the syscall that
    /// CLOCK_MONOTONIC did not go back and that [vdso] is mapped, checkpointed
    /// after five and restored (the restored process maps the restoring
    /// kernel's vDSO and data page): the lines before and after are those of
    /// a native run, and the restored process's clock_gettime does not trap.
    @Test func monotonicReadThroughTheVDSOContinuesAcrossARestore() throws {
        let arguments = ["ticks", "20", "80"]
        let native = try Fixtures.runNatively("vdso_cases", arguments)
        #expect(native.status == 0)
        let session = try CheckpointSession(["/bin/vdso_cases"] + arguments)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(5, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == native.stdout.split(separator: "\n").map(String.init))
        #expect(session.errors(of: "after").contains("fast path: yes"), "\(session.errors(of: "after"))")
    }
}

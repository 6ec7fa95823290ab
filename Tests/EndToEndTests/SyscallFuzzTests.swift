import Foundation
import Testing

/// The syscall fuzzer (fixtures/syscall_fuzz.c) in the sandbox, for fixed
/// seeds: random syscall numbers with hostile arguments, and real calls with
/// one argument mutated. Whatever a call asks, the Sentry answers with a result
/// or an errno: the container survives and the fixture finishes. `scripts/fuzz`
/// runs it for longer with new seeds.
@Suite struct SyscallFuzzTests {
    /// Mutate seed 6 exchanged a file with its own directory (call 1511) and hung the Sentry.
    static let seeds = "1-12"
    static let callsPerSeed = "2000"

    @Test(arguments: ["random", "mutate"])
    func theSandboxSurvivesTheFuzzer(mode: String) throws {
        let sandbox = try SandboxRun(["/bin/syscall_fuzz", "--in-sandbox", "--dir", "/tmp", "--mode", mode,
                                      "--seeds", Self.seeds, "--count", Self.callsPerSeed], debug: true, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("syscall_fuzz"),
                                         toPath: sandbox.bundle + "/rootfs/bin/syscall_fuzz")
        try FileManager.default.createDirectory(atPath: sandbox.bundle + "/rootfs/tmp", withIntermediateDirectories: true)
        let result = try sandbox.start().finish(timeout: 120)
        let trap = result.stderr.split(separator: "\n").first { $0.contains("Fatal error") }
        #expect(trap == nil, "the Sentry trapped: \(trap ?? "")")
        #expect(result.status == 0, "last output: \(result.stdout.suffix(300)) stderr: \(result.stderr.suffix(600))")
        #expect(result.stdout.contains("syscall_fuzz: done: 12 seeds"), "\(result.stdout.suffix(300))")
    }

    /// What the fuzzer found, as small cases compared with a native run.
    @Test func inputsTheFuzzerFoundMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("fuzz_regressions")
        let native = try Fixtures.runNatively("fuzz_regressions")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

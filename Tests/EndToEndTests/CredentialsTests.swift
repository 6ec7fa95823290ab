import Foundation
import OCI
import Testing

/// set*id, setgroups, setfs*id, capset, securebits and what exec makes of
/// them, compared with a native run as root; and `make`, whose job
/// spawning (posix_spawn with POSIX_SPAWN_RESETIDS) calls setresuid.
@Suite struct CredentialsTests {
    /// The fixture works in a directory of the writable rootfs (hostfs, no
    /// nosuid, so its set-user-ID copy counts) and natively in one under the
    /// host's temporary directory.
    @Test func idsCapabilitiesAndExecMatchANativeRun() throws {
        let name = "credentials_cases"
        let sandbox = try SandboxRun(["/bin/" + name, "/data"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: sandbox.bundle + "/rootfs/bin/" + name)
        try sandbox.makeRootfsWritable(directory: "/data")
        try SandboxRun.grantAllCapabilities(bundle: sandbox.bundle)
        let nativeDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: nativeDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: nativeDirectory) }
        let native = try Fixtures.runNatively(name, [nativeDirectory])
        let result = try sandbox.start().finish(timeout: 60)
        #expect(native.status == 0, "\(native.stderr)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

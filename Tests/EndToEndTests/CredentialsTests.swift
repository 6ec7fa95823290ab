import Foundation
import Testing

/// set*id, setgroups, setfs*id, capset, securebits and what exec makes of
/// them, and the scheduling attributes whose permissions follow them,
/// compared with a native run as root.
@Suite struct CredentialsTests {
    /// The fixture works in a directory of the writable rootfs (hostfs, no
    /// nosuid, so its set-user-ID copy counts) and natively in one under the
    /// host's temporary directory.
    @Test func idsCapabilitiesAndExecMatchANativeRun() throws {
        let nativeDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: nativeDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: nativeDirectory) }
        try SandboxRun.expectPrivilegedFixtureMatchesNative("credentials_cases", arguments: ["/data"],
                                                            nativeArguments: [nativeDirectory]) { sandbox in
            try sandbox.makeRootfsWritable(directory: "/data")
        }
    }

    /// Nice values, policies, affinity and I/O priorities as root and as
    /// another user, and what a child inherits.
    @Test func schedulingAttributesMatchANativeRun() throws {
        try SandboxRun.expectPrivilegedFixtureMatchesNative("scheduling_cases")
    }
}

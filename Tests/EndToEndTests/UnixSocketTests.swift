import Foundation
import Testing

/// Unix domain sockets compared with native runs: socketpair, stream,
/// datagram and seqpacket semantics, names on tmpfs, on a host bind mount
/// and abstract, SCM_RIGHTS and SCM_CREDENTIALS, options, readiness.
@Suite struct UnixSocketTests {
    /// Path names under /tmp (a tmpfs in the sandbox) and under a
    /// read-write bind mount of a host directory, where the socket inode
    /// exists only in the sandbox: the name the fixture leaves there is
    /// not in the host directory.
    @Test(arguments: [false, true])
    func unixCasesMatchANativeRun(onHostMount: Bool) throws {
        let sandbox = try SandboxRun(["/bin/unix_cases"] + (onHostMount ? ["/mnt/shared", "keep"] : ["/tmp"]),
                                     start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("unix_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/unix_cases")
        let shared = sandbox.workspace.path + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        if onHostMount {
            try FileManager.default.createDirectory(atPath: sandbox.bundle + "/rootfs/mnt/shared",
                                                    withIntermediateDirectories: true)
            try BindMountTests.addBindMounts([("/mnt/shared", shared, ["rw"])], to: sandbox.bundle)
        }
        let result = try sandbox.start().finish(timeout: 60)
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared).isEmpty)
        let native = try Fixtures.runNatively("unix_cases", onHostMount ? [shared, "keep"] : ["/tmp"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

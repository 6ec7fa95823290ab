import Foundation
import Testing

/// SysV shared memory (shmget, shmat, shmdt, shmctl) compared with a native
/// run as root: keys, attachments across fork and exit, removal while
/// attached, permissions for another user.
@Suite struct ShmTests {
    @Test func shmCasesMatchANativeRun() throws {
        let name = "shm_cases"
        let sandbox = try SandboxRun(["/bin/" + name], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: sandbox.bundle + "/rootfs/bin/" + name)
        try SandboxRun.grantAllCapabilities(bundle: sandbox.bundle)
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively(name)
        #expect(native.status == 0, "\(native.stderr)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }
}

import Foundation
import Testing

/// SysV shared memory (shmget, shmat, shmdt, shmctl) compared with a native
/// run as root: keys, attachments across fork and exit, removal while
/// attached, permissions for another user.
@Suite struct ShmTests {
    @Test func shmCasesMatchANativeRun() throws {
        try SandboxRun.expectPrivilegedFixtureMatchesNative("shm_cases")
    }
}

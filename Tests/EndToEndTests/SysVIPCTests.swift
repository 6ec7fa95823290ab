import Foundation
import Testing

/// SysV IPC compared with native runs as root: shared memory (keys,
/// attachments across fork and exit, removal while attached), semaphores
/// (atomic operations, blocking and waking, timeouts, SEM_UNDO, removal
/// under a waiter) and message queues (selection by type, truncation,
/// MSG_COPY, full queues, removal under a receiver), with permissions for
/// another user.
@Suite struct SysVIPCTests {
    @Test func shmCasesMatchANativeRun() throws {
        try SandboxRun.expectPrivilegedFixtureMatchesNative("shm_cases")
    }

    @Test func semaphoreCasesMatchANativeRun() throws {
        try SandboxRun.expectPrivilegedFixtureMatchesNative("sem_cases")
    }

    @Test func messageQueueCasesMatchANativeRun() throws {
        try SandboxRun.expectPrivilegedFixtureMatchesNative("msg_cases")
    }
}

import Foundation
import Testing

/// memfd_create and file seals: the cases fixture against a native run, and
/// a memfd with data, a shared mapping and seals across a checkpoint.
@Suite struct MemfdTests {
    @Test func memfdCasesMatchANativeRun() throws {
        try SyscallFixtureTests.expectMatchesNativeRun("memfd_cases")
    }

    /// Checkpointed after "ready": the restored memfd has the same bytes
    /// (checksum), seals and name, its mapping still shares pages with
    /// write(2), and new memfds work on the restored kernel.
    @Test func aMemfdWithDataSurvivesACheckpoint() throws {
        let (output, native) = try CheckpointSession.outputAcrossCheckpoint("ckpt_memfd")
        #expect(output == native)
        #expect(native.contains("name: /memfd:kept (deleted)\n"))
    }
}

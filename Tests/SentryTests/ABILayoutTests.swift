import Testing
@testable import Sentry

/// The structs handlers copy to and from the application must have the C
/// layout of x86_64 Linux, byte for byte: a Swift struct that grew by padding
/// would write past the application's buffer.
@Suite struct ABILayout {
    @Test func kernelStructsHaveTheirLinuxSizes() {
        #expect(MemoryLayout<Process.RawSysinfo>.size == 112)
        #expect(MemoryLayout<Process.RawUsage>.size == 144)
        #expect(MemoryLayout<Process.RawLimit>.size == 16)
        #expect(MemoryLayout<Signals.RawAction>.size == 32)
        #expect(MemoryLayout<Signals.RawStack>.size == 24)
        #expect(MemoryLayout<Time.Timespec>.size == 16)
    }

    @Test func sysinfoFieldsSitAtTheirCOffsets() {
        #expect(MemoryLayout<Process.RawSysinfo>.offset(of: \.procs) == 80)
        #expect(MemoryLayout<Process.RawSysinfo>.offset(of: \.totalhigh) == 88)
        #expect(MemoryLayout<Process.RawSysinfo>.offset(of: \.memUnit) == 104)
        #expect(MemoryLayout<Signals.RawStack>.offset(of: \.size) == 16)
    }
}

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

    /// struct signalfd_siginfo (uapi/linux/signalfd.h), struct sigevent and
    /// struct itimerspec as timer_create and timer_settime read them.
    @Test func timerAndSignalfdStructsHaveLinuxLayout() {
        #expect(MemoryLayout<RawSignalFDInfo>.size == 128)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.pid) == 12)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.overrun) == 32)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.int) == 44)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.ptr) == 48)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.addr) == 72)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.addrLSB) == 80)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.syscall) == 84)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.callAddr) == 88)
        #expect(MemoryLayout<RawSignalFDInfo>.offset(of: \.arch) == 96)
        #expect(MemoryLayout<RawSignalEvent>.size == 64)
        #expect(MemoryLayout<RawSignalEvent>.offset(of: \.notify) == 12)
        #expect(MemoryLayout<RawSignalEvent>.offset(of: \.threadID) == 16)
        #expect(MemoryLayout<PosixTimerSyscalls.Itimerspec>.size == 32)
    }

    @Test func sysinfoFieldsSitAtTheirCOffsets() {
        #expect(MemoryLayout<Process.RawSysinfo>.offset(of: \.procs) == 80)
        #expect(MemoryLayout<Process.RawSysinfo>.offset(of: \.totalhigh) == 88)
        #expect(MemoryLayout<Process.RawSysinfo>.offset(of: \.memUnit) == 104)
        #expect(MemoryLayout<Signals.RawStack>.offset(of: \.size) == 16)
    }

    /// The signal frame as arch/x86/include/asm/sigframe.h and the uapi
    /// headers lay it out: glibc, Go and the JVM read these offsets.
    @Test func signalFrameHasLinuxLayout() {
        #expect(MemoryLayout<RawSigcontext>.size == 256)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.di) == 64)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.sp) == 120)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.ip) == 128)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.cs) == 144)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.ss) == 150)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.err) == 152)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.oldmask) == 168)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.cr2) == 176)
        #expect(MemoryLayout<RawSigcontext>.offset(of: \.fpstate) == 184)
        #expect(MemoryLayout<RawUcontext>.size == 304)
        #expect(MemoryLayout<RawUcontext>.offset(of: \.stack) == 16)
        #expect(MemoryLayout<RawUcontext>.offset(of: \.mcontext) == 40)
        #expect(MemoryLayout<RawUcontext>.offset(of: \.sigmask) == 296)
        #expect(MemoryLayout<RawSignalInfo>.size == 128)
        #expect(MemoryLayout<RawSignalInfo>.offset(of: \.fields) == 16)
        #expect(MemoryLayout<RawSignalFrame>.size == 440)
        #expect(MemoryLayout<RawSignalFrame>.offset(of: \.uc) == 8)
        #expect(MemoryLayout<RawSignalFrame>.offset(of: \.info) == 312)
        #expect(MemoryLayout<RawFPXSoftwareBytes>.size == 48)
        #expect(MemoryLayout<RawFPXSoftwareBytes>.offset(of: \.xstateSize) == 16)
    }

    @Test func signalNumbersAreLinuxs() {
        #expect(LinuxSignal.SA_RESTORER == 0x0400_0000 && LinuxSignal.SA_ONSTACK == 0x0800_0000)
        #expect(LinuxSignal.SA_RESTART == 0x1000_0000 && LinuxSignal.SA_NODEFER == 0x4000_0000)
        #expect(LinuxSignal.SA_RESETHAND == 0x8000_0000 && LinuxSignal.SA_SIGINFO == 4)
        #expect(LinuxSignal.FP_XSTATE_MAGIC1 == 0x4650_5853 && LinuxSignal.FP_XSTATE_MAGIC2 == 0x4650_5845)
        #expect(LinuxSignal.FIX_EFLAGS == 0x50dd5)
        #expect(SignalSet.synchronous.rawValue == 0x4000_04d8)
    }
}

import CShim
import Glibc
@testable import Platform
import Synchronization
import Testing

/// Running application code in a stub: syscall stops, faults, interrupts.
@Suite struct ContextTests {
    @Test func syscallStopsCarryNumberArgumentsAndTheResultWeSet() throws {
        let code = X86.call(39)
            + X86.movRDIFromRAX + X86.call(39)
            + X86.mov(.rdi, 1) + X86.mov(.rsi, 2) + X86.mov(.rdx, 3) + X86.mov(.r10, 4)
            + X86.mov(.r8, 5) + X86.mov(.r9, -6) + X86.call(17)
            + X86.mov(.rdi, 7) + X86.call(60)
        let stops = try onTracerThread { () throws -> [(StopReason, [UInt64])] in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            var fp = FloatingPointState.initial()
            var stops: [(StopReason, [UInt64])] = []
            for _ in 0..<4 {
                let stop = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
                stops.append((stop, regs.syscallArguments))
                regs.setSyscallReturn(4242)
            }
            return stops
        }
        #expect(stops.map(\.0) == [.syscall(number: 39), .syscall(number: 39), .syscall(number: 17), .syscall(number: 60)])
        #expect(stops[1].1[0] == 4242, "the app sees the rax we set as getpid's result")
        #expect(stops[2].1 == [1, 2, 3, 4, 5, UInt64(bitPattern: -6)])
        #expect(stops[3].1[0] == 7)
    }

    @Test func nullDereferenceIsAFaultAndTheStubSurvives() throws {
        let exitCall = X86.loadFromNull.count
        let code = X86.loadFromNull + X86.mov(.rdi, 9) + X86.call(60)
        let (fault, faultRIP, alive, after) = try onTracerThread { () throws -> (StopReason, UInt64, Bool, StopReason) in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            var fp = FloatingPointState.initial()
            let fault = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            let faultRIP = regs.rip
            let alive = kill(fixture.addressSpace.pid, 0) == 0
            regs.rip = StubFixture.codeAddress + UInt64(exitCall)
            let after = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            return (fault, faultRIP, alive, after)
        }
        #expect(fault == .fault(Fault(signal: SIGSEGV, code: 1 /* SEGV_MAPERR */, address: 0)))
        #expect(faultRIP == StubFixture.codeAddress, "the faulting instruction did not retire")
        #expect(alive)
        #expect(after == .syscall(number: 60))
    }

    @Test func storesReachTheMemoryFileAndProtectionChangesFault() throws {
        let code = X86.movabsRAX(StubFixture.dataAddress + 8) + X86.storeRBXAtRAX + X86.call(39)
        let (first, stored, readOnly, unmapped) = try onTracerThread { () throws -> (StopReason, [UInt8], StopReason, StopReason) in
            let fixture = try StubFixture(code: code)
            var fp = FloatingPointState.initial()
            var regs = fixture.start()
            regs.rbx = 0x1122_3344_5566_7788
            let first = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            let stored = fixture.read(8, at: StubFixture.dataOffset + 8)

            try fixture.addressSpace.protect(address: StubFixture.dataAddress, length: 0x1000, protection: .read)
            regs = fixture.start()
            let readOnly = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)

            try fixture.addressSpace.unmap(address: StubFixture.dataAddress, length: 0x1000)
            regs = fixture.start()
            let unmapped = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            return (first, stored, readOnly, unmapped)
        }
        #expect(first == .syscall(number: 39))
        #expect(stored == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(readOnly == .fault(Fault(signal: SIGSEGV, code: 2 /* SEGV_ACCERR */, address: StubFixture.dataAddress + 8)))
        #expect(unmapped == .fault(Fault(signal: SIGSEGV, code: 1 /* SEGV_MAPERR */, address: StubFixture.dataAddress + 8)))
    }

    @Test func floatingPointStateGoesInAndComesBack() throws {
        let code = X86.movRDIFromXMM0 + X86.movabsRAX(0xfeed_face_cafe_beef) + X86.movXMM1FromRAX + X86.call(39)
        let (stop, rdi, xmm1, size) = try onTracerThread { () throws -> (StopReason, UInt64, [UInt8], Int) in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            var fp = FloatingPointState.initial()
            let xmm0 = FloatingPointState.xmmOffset(0)
            fp.bytes.replaceSubrange(xmm0..<xmm0 + 8, with: [1, 2, 3, 4, 5, 6, 7, 8])
            let stop = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            let xmm1 = FloatingPointState.xmmOffset(1)
            return (stop, regs.rdi, Array(fp.bytes[xmm1..<xmm1 + 8]), fp.bytes.count)
        }
        #expect(stop == .syscall(number: 39))
        #expect(rdi == 0x0807_0605_0403_0201)
        #expect(xmm1 == [0xef, 0xbe, 0xfe, 0xca, 0xce, 0xfa, 0xed, 0xfe])
        #expect(size == FloatingPointState.hostSize, "PTRACE_GETREGSET size matches CPUID leaf 0xD")
    }

    @Test func aStateWrittenOverWhatTheThreadLeftReplacesAllOfIt() throws {
        // vpcmpeqd ymm0, ymm0, ymm0 (all of ymm0 ones, its upper half in use), twice;
        // pcmpeqd xmm0, xmm0 (SSE only); movq rdi, xmm1. Each ends with getpid.
        let avx: [UInt8] = [0xc5, 0xfd, 0x76, 0xc0], sse: [UInt8] = [0x66, 0x0f, 0x76, 0xc0]
        let movRDIFromXMM1: [UInt8] = [0x66, 0x48, 0x0f, 0x7e, 0xcf]
        let getpid = X86.call(39)
        let code = avx + getpid + avx + getpid + sse + getpid + movRDIFromXMM1 + getpid
        let upperHalf = 576  // YMM_Hi128 in the standard XSAVE layout
        let xmm0 = FloatingPointState.xmmOffset(0), xmm1 = FloatingPointState.xmmOffset(1)
        let (states, rdi) = try onTracerThread { () throws -> ([FloatingPointState], UInt64) in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            var states: [FloatingPointState] = []
            // Read at the stop (what the thread holds is known), then replaced.
            var fp = FloatingPointState.initial()
            _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            states.append(fp)
            try fixture.context.setFloatingPointState(.initial())
            states.append(try fixture.context.floatingPointStateFromHost())
            // Not read at the stop: replaced over AVX state, then over SSE state.
            _ = try fixture.context.switchToApp(registers: &regs)
            try fixture.context.setFloatingPointState(.initial())
            states.append(try fixture.context.floatingPointStateFromHost())
            _ = try fixture.context.switchToApp(registers: &regs)
            var marked = FloatingPointState.initial()
            marked.bytes.replaceSubrange(xmm1..<xmm1 + 8, with: [8, 7, 6, 5, 4, 3, 2, 1])
            try fixture.context.setFloatingPointState(marked)
            states.append(try fixture.context.floatingPointStateFromHost())
            _ = try fixture.context.switchToApp(registers: &regs)
            return (states, regs.rdi)
        }
        #expect(states.count == 4)
        guard states.count == 4 else { return }
        #expect(states[0].bytes[upperHalf..<upperHalf + 16].allSatisfy { $0 == 0xff }, "the stub's AVX write is seen")
        for state in states[1...] {
            #expect(state.bytes[upperHalf..<upperHalf + 32].allSatisfy { $0 == 0 })
            #expect(state.bytes[xmm0..<xmm0 + 16].allSatisfy { $0 == 0 })
            #expect(state.bytes[24..<26] == [0x80, 0x1f], "MXCSR is the initial one")
            #expect(state.bytes[512] & 0x4 == 0, "no AVX state in use")
        }
        #expect(Array(states[3].bytes[xmm1..<xmm1 + 8]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(rdi == 0x0102_0304_0506_0708)
    }

    @Test func aStateWrittenOverOneWithoutX87InUseIsAllOfIt() throws {
        // The thread holds a state with XSTATE_BV's x87 bit clear (SSE only),
        // read at its stop; the initial state written over it (x87 and SSE
        // set) may take the legacy-only write, and must read back as written
        // and run as written. movq rdi, xmm1, then getpid.
        let movRDIFromXMM1: [UInt8] = [0x66, 0x48, 0x0f, 0x7e, 0xcf]
        let code = X86.call(39) + movRDIFromXMM1 + X86.call(39)
        let xmm1 = FloatingPointState.xmmOffset(1)
        let (held, read, rdi) = try onTracerThread { () throws -> (FloatingPointState, FloatingPointState, UInt64) in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            var fp = FloatingPointState.initial()
            fp.bytes[FloatingPointState.legacySize] = 0x2
            _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            var marked = FloatingPointState.initial(size: fp.bytes.count)
            marked.bytes.replaceSubrange(xmm1..<xmm1 + 8, with: [8, 7, 6, 5, 4, 3, 2, 1])
            try fixture.context.setFloatingPointState(marked)
            let read = try fixture.context.floatingPointStateFromHost()
            _ = try fixture.context.switchToApp(registers: &regs)
            return (fp, read, regs.rdi)
        }
        let legacy = FloatingPointState.legacySize
        #expect(held.bytes[legacy] & 0x1 == 0, "the held state has no x87 in use")
        #expect(read.bytes[legacy] & 0x3 == 0x3)
        #expect(Array(read.bytes[xmm1..<xmm1 + 8]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(read.bytes[0..<2] == [0x7f, 0x03], "FCW is the initial one")
        #expect(read.bytes[24..<26] == [0x80, 0x1f], "MXCSR is the initial one")
        #expect(rdi == 0x0102_0304_0506_0708)
    }

    @Test func fsBaseIsTheApplicationsTLS() throws {
        let code = X86.loadRDIFromFS + X86.call(39)
        let (stop, rdi, fsBase) = try onTracerThread { () throws -> (StopReason, UInt64, UInt64) in
            let fixture = try StubFixture(code: code)
            try fixture.write([0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0x11], at: StubFixture.dataOffset + 0x40)
            var regs = fixture.start()
            regs.fsBase = StubFixture.dataAddress + 0x40
            var fp = FloatingPointState.initial()
            let stop = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            return (stop, regs.rdi, regs.fsBase)
        }
        #expect(stop == .syscall(number: 39))
        #expect(rdi == 0x1100_0000_ddcc_bbaa)
        #expect(fsBase == StubFixture.dataAddress + 0x40)
    }

    @Test func anotherThreadCanInterruptASpinningThread() throws {
        let (first, rip, pending) = try onTracerThread { () throws -> (StopReason, UInt64, StopReason) in
            let fixture = try StubFixture(code: X86.spin)
            let interrupter = fixture.context.interrupter
            let kicker = try DedicatedThread(name: "kicker") {
                usleep(50_000)
                interrupter.interrupt()
            }
            var regs = fixture.start()
            var fp = FloatingPointState.initial()
            let first = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            kicker.join()
            // A kick while the Sentry holds the thread is not lost, even
            // across an injected call.
            interrupter.interrupt()
            try fixture.addressSpace.protect(address: StubFixture.dataAddress, length: 0x1000, protection: .read)
            let pending = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            return (first, regs.rip, pending)
        }
        #expect(first == .interrupted)
        #expect(rip == StubFixture.codeAddress)
        #expect(pending == .interrupted)
    }

    @Test func aKilledStubIsReportedAsDied() throws {
        let stop = try onTracerThread { () throws -> StopReason in
            let fixture = try StubFixture(code: X86.spin)
            kill(fixture.addressSpace.pid, SIGKILL)
            var regs = fixture.start()
            var fp = FloatingPointState.initial()
            return try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
        }
        #expect(stop == .died(.killed(signal: SIGKILL)))
    }

    @Test func registersSurviveARoundTrip() throws {
        let code = X86.call(39)
        let (before, after) = try onTracerThread { () throws -> (Registers, Registers) in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            regs.rbx = 11; regs.rbp = 12; regs.r12 = 13; regs.r13 = 14; regs.r14 = 15; regs.r15 = 16
            regs.gsBase = 0x5000
            let before = regs
            _ = try fixture.context.switchToApp(registers: &regs)
            return (before, regs)
        }
        #expect(after.rbx == before.rbx && after.rbp == before.rbp && after.r12 == before.r12)
        #expect(after.r13 == before.r13 && after.r14 == before.r14 && after.r15 == before.r15)
        #expect(after.gsBase == before.gsBase)
        #expect(after.rip == before.rip + 7, "rip is after the syscall instruction")
        #expect(after.origRax == 39)
    }

    /// After a syscall stop only rax is written back while the thread still
    /// holds the registers of that stop; an injected call on the same stub
    /// thread (a mapping change made from its tracer) clobbers them, so the
    /// next switch must write them all.
    @Test func anInjectedCallOnTheOwnStubMakesTheNextSwitchWriteAllRegisters() throws {
        let code = X86.call(39) + X86.movRDIFromRAX + X86.call(39)
        let (first, second, rdi, before, after) = try onTracerThread {
            () throws -> (StopReason, StopReason, UInt64, Registers, Registers) in
            let fixture = try StubFixture(code: code)
            var regs = fixture.start()
            regs.rbx = 0x1111; regs.rbp = 0x2222; regs.r12 = 0x3333; regs.r15 = 0x4444
            var fp = FloatingPointState.initial()
            let first = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            try fixture.addressSpace.protect(address: StubFixture.dataAddress, length: 0x1000, protection: .read)
            regs.setSyscallReturn(4242)
            let before = regs
            let second = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            return (first, second, regs.syscallArguments[0], before, regs)
        }
        #expect(first == .syscall(number: 39))
        #expect(second == .syscall(number: 39))
        #expect(rdi == 4242, "the app sees the rax we set as getpid's result")
        #expect(after.rip == before.rip + UInt64(X86.movRDIFromRAX.count + X86.call(39).count))
        #expect(after.rbx == before.rbx && after.rbp == before.rbp && after.r12 == before.r12 && after.r15 == before.r15)
    }
}

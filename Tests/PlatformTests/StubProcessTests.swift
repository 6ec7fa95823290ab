import CShim
import Glibc
import Platform
import Synchronization
import Testing

/// What a stub process holds of the host: nothing but our page and the MemoryFile.
@Suite struct StubProcessTests {
    @Test func stubMapsOnlyItsCodePageAndMemoryFileRanges() throws {
        let maps = try onTracerThread { () throws -> String in
            let fixture = try StubFixture(code: X86.spin)
            return readProcFile("/proc/\(fixture.addressSpace.pid)/maps")
        }
        let lines = maps.split(separator: "\n").map(String.init)
        #expect(!lines.isEmpty)
        var memoryFileMappings = 0
        var sawStubPage = false
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            let range = fields[0]
            let name = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
            if range.hasPrefix("7fffffffe000-7ffffffff000") {
                sawStubPage = true
                #expect(fields[1] == "r-xp", "stub page must be read+execute only: \(line)")
            } else if name.hasPrefix("/memfd:platform-test") {
                memoryFileMappings += 1
                #expect(fields[1].hasSuffix("s"), "MemoryFile mappings are shared: \(line)")
            } else {
                #expect(name == "[vsyscall]", "unexpected host mapping in the stub: \(line)")
            }
        }
        #expect(sawStubPage)
        #expect(memoryFileMappings == 2)
        #expect(!maps.contains("[vdso]"))
        #expect(!maps.contains("[vvar]"))
        #expect(!maps.contains("[stack]"))
    }

    @Test func stubKeepsOnlyTheMemoryFileDescriptor() throws {
        let (entries, target) = try onTracerThread { () throws -> ([String], String) in
            let fixture = try StubFixture(code: X86.spin)
            let pid = fixture.addressSpace.pid
            return (directoryEntries("/proc/\(pid)/fd"), readLink("/proc/\(pid)/fd/\(AddressSpace.memoryFileDescriptor)"))
        }
        #expect(entries == ["\(AddressSpace.memoryFileDescriptor)"])
        #expect(target.hasPrefix("/memfd:platform-test"))
    }

    @Test func releaseKillsAndReapsTheStub() throws {
        let pid = try onTracerThread { () throws -> Int32 in
            let fixture = try StubFixture(code: X86.spin)
            fixture.addressSpace.release()
            return fixture.addressSpace.pid
        }
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }

    /// apply(): maps and protection changes run in order, several to a stop
    /// of the stub; the first failing one (an mprotect of nothing mapped)
    /// stops the batch and is reported by its index, and nothing after it is
    /// done. The thread runs the application after it as after any call.
    @Test func batchedChangesApplyInOrderUpToTheFirstFailure() throws {
        struct Seen: Sendable {
            var applied = 0
            var errno: Int32?
            var maps = ""
            var stop: StopReason?
        }
        let seen = try onTracerThread { () throws -> Seen in
            let fixture = try StubFixture(code: X86.call(39))
            let (applied, failure) = fixture.addressSpace.apply([
                .map(address: 0x30000, length: 0x1000, fileOffset: 0x1000, protection: [.read, .write]),
                .map(address: 0x31000, length: 0x1000, fileOffset: 0x3000, protection: [.read]),
                .protect(address: 0x30000, length: 0x1000, protection: [.read]),
                .map(address: 0x33000, length: 0x2000, fileOffset: 0x1000, protection: [.read, .execute]),
                .protect(address: 0x50000, length: 0x1000, protection: [.read]),
                .map(address: 0x60000, length: 0x1000, fileOffset: 0x1000, protection: [.read]),
            ])
            var seen = Seen(applied: applied, errno: failure?.errno)
            seen.maps = readProcFile("/proc/\(fixture.addressSpace.pid)/maps")
            var registers = fixture.start()
            seen.stop = try fixture.context.switchToApp(registers: &registers)
            return seen
        }
        #expect(seen.applied == 4)
        #expect(seen.errno == ENOMEM)
        let lines = seen.maps.split(separator: "\n").map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
        #expect(lines.contains("00030000-00031000 r--s 00001000"), "\(seen.maps)")
        #expect(lines.contains("00031000-00032000 r--s 00003000"), "\(seen.maps)")
        #expect(lines.contains("00033000-00035000 r-xs 00001000"), "\(seen.maps)")
        #expect(!lines.contains { $0.hasPrefix("00060000") }, "\(seen.maps)")
        #expect(seen.stop == .syscall(number: 39))
    }

    /// A thread that traces no stub thread of the address space has its
    /// host calls run by the address space's owner thread.
    @Test func aThreadTracingNoStubThreadMapsThroughTheOwner() throws {
        let outcome = try onTracerThread { () throws -> (PlatformError?, StopReason) in
            // mov rax, 0x30000; store rbx there; getpid: faults unless 0x30000 is mapped.
            let fixture = try StubFixture(code: X86.movabsRAX(0x30000) + X86.storeRBXAtRAX + X86.call(39))
            let space = fixture.addressSpace
            let error = try onTracerThread { () -> PlatformError? in
                do throws(PlatformError) {
                    try space.map(address: 0x30000, length: 0x1000, fileOffset: StubFixture.dataOffset,
                                  protection: [.read, .write])
                    return nil
                } catch {
                    return error
                }
            }
            var registers = fixture.start()
            return (error, try fixture.context.switchToApp(registers: &registers))
        }
        #expect(outcome.0 == nil)
        #expect(outcome.1 == .syscall(number: 39))
    }

    @Test func theStubPageCannotBeMappedOver() throws {
        let error = try onTracerThread { () throws -> PlatformError? in
            let fixture = try StubFixture(code: X86.spin)
            do throws(PlatformError) {
                try fixture.addressSpace.map(address: AddressSpace.stubPageAddress, length: 0x1000,
                                             fileOffset: 0, protection: .read)
                return nil
            } catch {
                return error
            }
        }
        #expect(error?.operation == .validate)
        #expect(error?.errno == EINVAL)
    }

    /// A context pins itself and its stub thread to one CPU and both stay
    /// there while it switches (left free, the tracer was woken onto the
    /// other CPU at one stop in four and took the stub along each time).
    /// `releaseCaller` lets the tracer go for a sleep; its stub thread then
    /// follows it from switch to switch, and after a few switches without a
    /// sleep the tracer is pinned again where it runs, with its stub thread.
    @Test func theStubThreadAndItsTracerStayOnOneCPU() throws {
        struct Seen: Sendable {
            var placed: Int32?
            var stubMask = ""
            var ownMask = ""
            var followed: Int32?
            var stubMaskAfter = ""
            var ownMaskAfter = ""
            var ownMaskReleased = ""
            var ownMaskNextSwitch = ""
            var stubMaskNextSwitch = ""
            var nextSwitchCPU: Int32?
            var refollowed: Int32?
            var stubMaskAgain = ""
            var ownMaskAgain = ""
        }
        let seen = try onTracerThread { () throws -> Seen in
            let fixture = try StubFixture(code: X86.call(39))
            // The context's stub thread, not the stub's first (the owner's).
            let path = "/proc/\(fixture.addressSpace.pid)/task/\(fixture.context.stubThreadID)/status"
            var seen = Seen(placed: fixture.context.cpu, stubMask: cpusAllowed(readProcFile(path)),
                            ownMask: cpusAllowed(readProcFile("/proc/thread-self/status")))
            var fp = FloatingPointState.initial()
            for _ in 0..<2 {
                var regs = fixture.start()
                _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            }
            seen.followed = fixture.context.cpu
            seen.stubMaskAfter = cpusAllowed(readProcFile(path))
            seen.ownMaskAfter = cpusAllowed(readProcFile("/proc/thread-self/status"))
            CPUPlacement.releaseCaller()
            seen.ownMaskReleased = cpusAllowed(readProcFile("/proc/thread-self/status"))
            var regs = fixture.start()
            _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            seen.nextSwitchCPU = fixture.context.cpu
            seen.stubMaskNextSwitch = cpusAllowed(readProcFile(path))
            seen.ownMaskNextSwitch = cpusAllowed(readProcFile("/proc/thread-self/status"))
            for _ in 0..<CPUPlacement.switchesBeforePinning {
                regs = fixture.start()
                _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            }
            seen.refollowed = fixture.context.cpu
            seen.stubMaskAgain = cpusAllowed(readProcFile(path))
            seen.ownMaskAgain = cpusAllowed(readProcFile("/proc/thread-self/status"))
            _ = cshim_unpin_thread(0)
            return seen
        }
        let process = cpusAllowed(readProcFile("/proc/self/status"))
        let placed = try #require(seen.placed)
        #expect(seen.stubMask == "\(placed)")
        #expect(seen.ownMask == "\(placed)")
        let followed = try #require(seen.followed)
        #expect(followed == placed)
        #expect(seen.stubMaskAfter == "\(followed)")
        #expect(seen.ownMaskAfter == "\(followed)")
        #expect(seen.ownMaskReleased == process)
        let nextSwitchCPU = try #require(seen.nextSwitchCPU)
        #expect(seen.stubMaskNextSwitch == "\(nextSwitchCPU)")
        #expect(seen.ownMaskNextSwitch == process)
        let refollowed = try #require(seen.refollowed)
        #expect(seen.stubMaskAgain == "\(refollowed)")
        #expect(seen.ownMaskAgain == "\(refollowed)")
    }

    /// The tracer, moved to another CPU between switches (pinned there, as
    /// the host scheduler might move it), takes its stub thread along.
    @Test(.enabled(if: placementCPUs().count >= 2, "following needs a second CPU"))
    func theStubThreadFollowsItsTracerToAnotherCPU() throws {
        let process = placementCPUs()
        let seen = try onTracerThread { () throws -> (placed: Int32?, other: Int32?, followed: Int32?, stubMask: String) in
            let fixture = try StubFixture(code: X86.call(39))
            let path = "/proc/\(fixture.addressSpace.pid)/task/\(fixture.context.stubThreadID)/status"
            var fp = FloatingPointState.initial()
            var regs = fixture.start()
            _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            let placed = fixture.context.cpu
            guard let other = process.first(where: { $0 != placed }), cshim_pin_thread(0, other) == 0 else {
                return (placed, nil, nil, "")
            }
            regs = fixture.start()
            _ = try fixture.context.switchToApp(registers: &regs, floatingPoint: &fp)
            let followed = fixture.context.cpu
            let stubMask = cpusAllowed(readProcFile(path))
            _ = cshim_unpin_thread(0)
            return (placed, other, followed, stubMask)
        }
        #expect(seen.placed != nil)
        let other = try #require(seen.other, "the tracer could not be pinned to another CPU")
        #expect(seen.followed == other)
        #expect(seen.stubMask == "\(other)")
    }

    /// A pinned tracer drives a task already; a new context of its (an exec
    /// into a new stub, a fork's fresh stub for the parent) puts the new stub
    /// thread on the tracer's CPU instead of moving the task to the next CPU
    /// of the round.
    @Test(.enabled(if: placementCPUs().count >= 2, "needs a second CPU to tell"))
    func aPinnedTracersNewContextStaysOnItsCPU() throws {
        let process = placementCPUs()
        let seen = try onTracerThread { () throws -> [Int32?] in
            var placed: [Int32?] = []
            for cpu in process.prefix(2) {
                guard cshim_pin_thread(0, cpu) == 0 else { return [] }
                let fixture = try StubFixture(code: X86.call(39))
                placed.append(fixture.context.cpu)
            }
            _ = cshim_unpin_thread(0)
            return placed
        }
        #expect(seen == process.prefix(2).map { Optional($0) })
    }

    /// A thread the Sentry starts from a pinned thread (a Sentry thread
    /// driving a stub is) runs on all the process's CPUs, not its creator's
    /// one, and placement from it chooses among all of them: otherwise every
    /// thread of a program runs on one CPU (4 CPU-bound threads took the time
    /// of 4 on one), and a dying stub's unmapping competed with its parent.
    @Test(.enabled(if: placementCPUs().count >= 2, "a one-CPU process has nowhere else to place"))
    func threadsStartedFromAPinnedThreadRunOnEveryCPU() throws {
        let process = placementCPUs()
        let first = try #require(process.first)
        let seen = Mutex<(placement: [Int32], mask: String)?>(nil)
        let thread = try DedicatedThread(name: "pinned") {
            guard cshim_pin_thread(0, first) == 0 else { return }
            let inheriting = try? DedicatedThread(name: "inheriting") {
                let mask = cpusAllowed(readProcFile("/proc/thread-self/status"))
                seen.withLock { $0 = (placementCPUs(), mask) }
            }
            inheriting?.join()
            _ = cshim_unpin_thread(0)
        }
        thread.join()
        let result = try #require(seen.withLock { $0 })
        #expect(result.placement == process)
        #expect(result.mask == cpusAllowed(readProcFile("/proc/self/status")))
    }

    /// recycle(): a stub whose application threads have all left is emptied
    /// and kept for the pool, traced by its owner (a thread of ours) with a
    /// second thread ready for the next address space, which takes it; one a
    /// thread still runs in is killed.
    @Test func recycleKeepsOnlyAStubNoThreadIsLeftIn() throws {
        struct Seen: Sendable {
            var kept: Int32 = 0
            var keptStatus = ""
            var busy: Int32 = 0
            var nextPID: Int32 = 0
            var next: StopReason?
        }
        let seen = try onTracerThread { () throws -> Seen in
            var seen = Seen()
            let fixture = try StubFixture(code: X86.call(39))
            let busy = try AddressSpace(memoryFile: fixture.memfd)
            let busyContext = try Context(addressSpace: busy)
            busy.recycle()
            seen.busy = busy.pid
            _ = busyContext
            fixture.context.release()
            fixture.addressSpace.recycle()
            seen.kept = fixture.addressSpace.pid
            seen.keptStatus = waitForPooled(seen.kept)
            let next = try AddressSpace(memoryFile: fixture.memfd)
            defer { next.release() }
            seen.nextPID = next.pid
            let context = try Context(addressSpace: next)
            defer { context.release() }
            try next.map(address: StubFixture.codeAddress, length: 0x1000, fileOffset: StubFixture.codeOffset,
                         protection: [.read, .execute])
            var registers = fixture.start()
            seen.next = try context.switchToApp(registers: &registers)
            return seen
        }
        #expect(kill(seen.busy, 0) == -1 && errno == ESRCH)
        let fields = seen.keptStatus.split(separator: "\n").map(String.init)
        #expect(fields.contains("Threads:\t2"), "\(seen.keptStatus)")
        #expect(fields.contains("VmSize:\t       4 kB"), "only the stub page is left: \(seen.keptStatus)")
        let tracer = fields.first { $0.hasPrefix("TracerPid:") }.flatMap { Int32($0.split(separator: "\t").last ?? "") }
        #expect(tracer.map { readProcFile("/proc/\($0)/status").contains("Tgid:\t\(getpid())") } == true,
                "traced by one of our threads: \(seen.keptStatus)")
        #expect(seen.nextPID == seen.kept)
        #expect(seen.next == .syscall(number: 39))
    }

    /// Two MemoryFiles alive at once (two kernels in one process, as tests
    /// run in parallel): an address space of one takes no idle stub of the
    /// other and leaves it alone in the pool.
    @Test func anotherMemoryFilesIdleStubOutlivesATakeForItsOwn() throws {
        let (kept, before, after, second) = try onTracerThread { () throws -> (Int32, String, String, Int32) in
            let first = try StubFixture(code: X86.call(39))
            first.context.release()
            first.addressSpace.recycle()
            let kept = first.addressSpace.pid
            let before = waitForPooled(kept)
            let second = try StubFixture(code: X86.call(39))
            return (kept, before, waitForPooled(kept), second.addressSpace.pid)
        }
        #expect(second != kept)
        #expect(before.contains("VmSize:\t       4 kB"), "\(kept): \(before)")
        #expect(after.contains("VmSize:\t       4 kB"), "\(kept) after the other's take: \(after)")
    }

    /// A MemoryFile that closes (its kernel thrown away by a restore) takes
    /// its idle stubs with it: they would keep its memory alive.
    @Test func anIdleStubEndsWhenItsMemoryFileCloses() throws {
        let (kept, before) = try onTracerThread { () throws -> (Int32, String) in
            let fixture = try StubFixture(code: X86.call(39))
            fixture.context.release()
            fixture.addressSpace.recycle()
            return (fixture.addressSpace.pid, waitForPooled(fixture.addressSpace.pid))
        }
        #expect(before.contains("VmSize:\t       4 kB"), "\(kept): \(before)")
        #expect(kill(kept, 0) == -1 && errno == ESRCH)
    }
}

/// A recycled stub's /proc status once it is emptied and has its second
/// thread (its owner did both after `recycle()` returned), or after a second.
private func waitForPooled(_ pid: Int32) -> String {
    var status = ""
    for _ in 0..<100 {
        status = readProcFile("/proc/\(pid)/status")
        if status.contains("VmSize:\t       4 kB") && status.contains("Threads:\t2") { break }
        usleep(10_000)
    }
    return status
}

/// The Cpus_allowed_list of a /proc status file.
private func cpusAllowed(_ status: String) -> String {
    status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
        .map { String($0.split(separator: "\t").last ?? "") } ?? ""
}

/// The CPUs placement chooses among, as CShim reads them.
private func placementCPUs() -> [Int32] {
    var cpus = [Int32](repeating: 0, count: 1024)
    let count = cshim_allowed_cpus(&cpus, Int32(cpus.count))
    return Array(cpus.prefix(Int(max(count, 0))))
}

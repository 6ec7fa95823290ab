#if canImport(Glibc)
import Glibc
#endif
import CShim
import CTrapProbe
import Platform
import Synchronization

extension BenchSection {
    /// The cost of one emulated syscall on the ptrace platform: a stub spins
    /// on `getpid`; each iteration is a SYSEMU stop, the result written to
    /// rax, and the resume. Beside it, a native getpid in the same run, and
    /// what a seccomp-trap (SIGSYS) hand-off through shared memory costs
    /// here, sleeping on one CPU or spinning on two: the measure for
    /// choosing the next platform.
    static let platform = BenchSection(
        name: "platform",
        summary: "ns per emulated getpid round trip (ptrace SYSEMU; SIGSYS hand-off probes) vs native getpid",
        options: ["--iterations N   round trips per timed run (default 100000)",
                  "--repeats N      timed runs per row, best kept (default 5)"],
        run: runPlatformBench)
}

/// Entry point of the `platform` section (also callable on its own).
func runPlatformBench(_ options: BenchOptions = BenchOptions([])) throws {
    let iterations = max(options.int("iterations", default: 100_000), 1)
    let repeats = max(options.int("repeats", default: 5), 1)

    let native = bestTiming(repeats) {
        for _ in 0..<iterations { _ = getpid() }
    }

    let measured = Mutex<Result<PlatformTimings, any Error>?>(nil)
    let driver = try DedicatedThread(name: "bench-platform") {
        let result = Result { try measureEmulated(iterations: iterations, repeats: repeats) }
        measured.withLock { $0 = result }
    }
    driver.join()
    guard let result = measured.withLock({ $0 }) else { throw PlatformBenchError.noResult }
    let emulated = try result.get()

    print("platform: \(iterations) getpid round trips per run, best of \(repeats); "
          + "stub and driver pinned to CPU \(emulated.cpu.map(String.init) ?? "none")")
    var table = Table(columns: ["getpid", "ns/call", "CPU ns/call", "x native"])
    let nativeNs = native.wall * 1e9 / Double(iterations)
    func row(_ name: String, _ timing: Timing) {
        let ns = timing.wall * 1e9 / Double(iterations)
        table.add([name, format(ns), format(timing.cpu * 1e9 / Double(iterations)), format(ns / nativeNs, decimals: 1)])
    }
    row("native", native)
    row("emulated, general registers", emulated.registersOnly)
    row("emulated, registers + FP state", emulated.withFloatingPoint)
    for (name, handoff) in [("SIGSYS hand-off, futex, one CPU", TRAP_PROBE_FUTEX_SAME_CPU),
                            ("SIGSYS hand-off, spinning, two CPUs", TRAP_PROBE_SPIN_TWO_CPUS)] {
        let ns = try bestProbe(repeats) { cpus in trap_probe_sigsys_round_trip(Int64(iterations), handoff, cpus, Int32(cpus.count)) }
        table.add([name, ns.map { format($0) } ?? "n/a", "", ns.map { format($0 / nativeNs, decimals: 1) } ?? "n/a"])
    }
    print(table.render())
    print("SIGSYS rows: a forked child's getppid trapped by SECCOMP_RET_TRAP, answered by this thread through a "
          + "shared page (the child's wall time; n/a: fewer than two CPUs for the spinning row)")
}

/// The best of `repeats` probe runs in ns per call; nil when the probe
/// cannot run here (fewer CPUs than it needs).
private func bestProbe(_ repeats: Int, _ probe: ([Int32]) -> Int64) throws -> Double? {
    var cpus = [Int32](repeating: 0, count: 2)
    let count = cpus.withUnsafeMutableBufferPointer { cshim_allowed_cpus($0.baseAddress, 2) }
    guard count > 0 else { throw PlatformBenchError.cpus(-count) }
    cpus.removeLast(2 - Int(count))
    var best: Int64?
    for _ in 0..<repeats {
        let ns = probe(cpus)
        if ns == -Int64(EINVAL) { return nil }
        guard ns >= 0 else { throw PlatformBenchError.probe(Int32(truncatingIfNeeded: -ns)) }
        best = min(best ?? ns, ns)
    }
    return best.map(Double.init)
}

private struct PlatformTimings: Sendable {
    var registersOnly: Timing
    var withFloatingPoint: Timing
    var cpu: Int32?
}

private enum PlatformBenchError: Error, CustomStringConvertible {
    case noResult
    case memoryFile(Int32)
    case unexpectedStop(StopReason)
    case cpus(Int32)
    case probe(Int32)

    var description: String {
        switch self {
        case .noResult: "platform: the driver thread produced no result"
        case .memoryFile(let errno): "platform: memfd: errno \(errno)"
        case .unexpectedStop(let stop): "platform: unexpected stop \(stop)"
        case .cpus(let errno): "platform: the process's CPUs: errno \(errno)"
        case .probe(let errno): "platform: the SIGSYS probe failed: errno \(errno)"
        }
    }
}

/// Runs on the driver thread, which becomes the stub's tracer.
private func measureEmulated(iterations: Int, repeats: Int) throws -> PlatformTimings {
    let memfd = cshim_memfd_create("runsc-bench", CSHIM_MFD_CLOEXEC)
    guard memfd >= 0 else { throw PlatformBenchError.memoryFile(-memfd) }
    defer {
        AddressSpace.memoryFileClosing(memfd)
        close(memfd)
    }
    // loop: mov eax, 39; syscall; jmp loop
    let code: [UInt8] = [0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7]
    guard ftruncate(memfd, 4096) == 0,
          code.withUnsafeBytes({ pwrite(memfd, $0.baseAddress, $0.count, 0) }) == code.count
    else { throw PlatformBenchError.memoryFile(errno) }

    let codeAddress: UInt64 = 0x10000
    let space = try AddressSpace(memoryFile: memfd)
    defer { space.release() }
    try space.map(address: codeAddress, length: 4096, fileOffset: 0, protection: [.read, .execute])
    let context = try Context(addressSpace: space)
    let pid = Int64(space.pid)

    var registers = Registers(rip: codeAddress, rsp: 0)
    var floatingPoint = FloatingPointState.initial()
    func expectGetpid(_ stop: StopReason) throws {
        guard stop == .syscall(number: 39) else { throw PlatformBenchError.unexpectedStop(stop) }
        registers.setSyscallReturn(pid)
    }
    for _ in 0..<1000 { try expectGetpid(try context.switchToApp(registers: &registers, floatingPoint: &floatingPoint)) }

    let registersOnly = try bestTiming(repeats) {
        for _ in 0..<iterations { try expectGetpid(try context.switchToApp(registers: &registers)) }
    }
    let withFloatingPoint = try bestTiming(repeats) {
        for _ in 0..<iterations {
            try expectGetpid(try context.switchToApp(registers: &registers, floatingPoint: &floatingPoint))
        }
    }
    return PlatformTimings(registersOnly: registersOnly, withFloatingPoint: withFloatingPoint, cpu: context.cpu)
}

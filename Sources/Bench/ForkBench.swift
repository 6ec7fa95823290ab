#if canImport(Glibc)
import Glibc
#endif
import Platform
import Sentry
import Synchronization

extension BenchSection {
    /// fork of a process with 1 GiB resident. Ours: `MemoryManager.fork()`
    /// of an MM whose pages a real stub has touched (so the stub's page
    /// tables are populated as an application's are, and the injected
    /// mprotect that takes write away from the parent's stub is counted),
    /// and again once the stub is gone (the bookkeeping alone). Beside it,
    /// the host's fork() of a process with the same memory touched
    /// (fixtures/bin/fork_bench), in the same run.
    static let fork = BenchSection(
        name: "fork",
        summary: "MemoryManager.fork of an MM with N MiB resident (copy-on-write, real stub) vs the host's fork()",
        options: ["--mib N          resident memory (default 1024)",
                  "--repeats N      forks per row; best and median shown (default 5)",
                  "--host PATH      the host fork workload (default fixtures/bin/fork_bench)"],
        run: runForkBench)
}

func runForkBench(_ options: BenchOptions) throws {
    let mib = max(options.int("mib", default: 1024), 1)
    let repeats = min(max(options.int("repeats", default: 5), 1), 1000)
    let host = options.string("host", default: "fixtures/bin/fork_bench")

    var hostFork: (best: Double, median: Double)?
    if access(host, X_OK) == 0 {
        let output = "/tmp/runsc-bench-fork-\(getpid()).txt"
        defer { unlink(output) }
        try ProcessRunner.check([host, String(mib), String(repeats)], stdout: output)
        let fields = readText(output).split(whereSeparator: \.isWhitespace)
        if fields.count == 3, fields[0] == "fork_ns", let best = Double(fields[1]), let median = Double(fields[2]) {
            hostFork = (best / 1e9, median / 1e9)
        }
    }

    let measured = Mutex<Result<ForkTimings, any Error>?>(nil)
    let driver = try DedicatedThread(name: "bench-fork") {
        let result = Result { try measureMemoryManagerFork(mib: mib, repeats: repeats) }
        measured.withLock { $0 = result }
    }
    driver.join()
    guard let result = measured.withLock({ $0 }) else { throw BenchError("fork: the driver thread produced no result") }
    let ours = try result.get()

    print("fork: \(mib) MiB resident, \(repeats) forks per row; ours is MemoryManager.fork() with the MM's "
          + "\(ours.privateRuns) private page run(s) in \(ours.vmas) VMA(s); the host's is fork() in "
          + (hostFork == nil ? "\(host) (not found: build the fixtures)" : host))
    var table = Table(columns: ["fork at \(mib) MiB", "best ms", "median ms", "x host (best)"])
    func row(_ name: String, _ times: (best: Double, median: Double)) {
        let ratio = hostFork.map { format(times.best / $0.best, decimals: 3) } ?? "-"
        table.add([name, format(times.best * 1e3, decimals: 3), format(times.median * 1e3, decimals: 3), ratio])
    }
    if let hostFork { row("host fork()", hostFork) }
    row("ours, with the stub's mprotect", ours.withStub)
    row("ours, no stub", ours.withoutStub)
    print(table.render())
}

private struct ForkTimings: Sendable {
    var withStub: (best: Double, median: Double)
    var withoutStub: (best: Double, median: Double)
    var privateRuns: Int
    var vmas: Int
}

/// Runs on the driver thread, which becomes the stub's tracer (and so may inject its mprotect).
private func measureMemoryManagerFork(mib: Int, repeats: Int) throws -> ForkTimings {
    let file = try MemoryFile.create()
    defer { file.release() }
    let mm = MemoryManager(memoryFile: file)
    let space = try AddressSpace(memoryFile: file.fd)
    _ = mm.acquireAddressSpace { PlatformAddressSpace(space) }
    defer { mm.release() }

    let length = UInt64(mib) << 20
    let data = try mm.map(MemoryManager.MappingRequest(address: 0, length: length, protection: [.read, .write],
                                                       shared: false))
    let code = try mm.map(MemoryManager.MappingRequest(address: 0, length: Page.size, protection: [.read, .execute],
                                                       shared: false))
    try mm.copyOut(touchLoop(from: data, pages: length / Page.size), to: code, force: true)
    let context = try Context(addressSpace: space)
    /// The stub writes one byte of every page, its faults served as a task's are.
    func touchEveryPage() throws {
        var registers = Registers(rip: code, rsp: 0)
        while true {
            let stop = try context.switchToApp(registers: &registers)
            switch stop {
            case .syscall(number: getpidNumber):
                return
            case .fault(let fault):
                let resolution = mm.handleFault(at: fault.address)
                guard resolution == .mapped else {
                    throw BenchError("fork: fault at 0x\(String(fault.address, radix: 16)): \(resolution)")
                }
            default:
                throw BenchError("fork: unexpected stop \(stop)")
            }
        }
    }
    try touchEveryPage()
    let vmas = mm.mappings.count
    let privateRuns = mm.privatePageRuns.count

    func forks(touchingBetween: Bool) throws -> (best: Double, median: Double) {
        var times: [Double] = []
        for _ in 0..<repeats {
            let start = now()
            let child = try mm.fork()
            times.append(now() - start)
            child.release()
            // The parent's pages are its own again, mapped without write:
            // the stub's writes make them writable, as before the fork.
            if touchingBetween { try touchEveryPage() }
        }
        times.sort()
        return (times[0], times[times.count / 2])
    }
    let withStub = try forks(touchingBetween: true)
    mm.releaseAddressSpace()
    let withoutStub = try forks(touchingBetween: false)
    return ForkTimings(withStub: withStub, withoutStub: withoutStub, privateRuns: privateRuns, vmas: vmas)
}

/// x86-64 getpid, the touch loop's last call.
private let getpidNumber = 39

/// x86-64 code: write 1 to the first byte of each of `pages` pages from
/// `address`, then getpid (the stop that says it is done).
private func touchLoop(from address: UInt64, pages: UInt64) -> [UInt8] {
    func bytes(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
    return [0x48, 0xbf] + bytes(address)           // mov rdi, address
        + [0x48, 0xb9] + bytes(pages)              // mov rcx, pages
        + [0xc6, 0x07, 0x01]                       // loop: mov byte [rdi], 1
        + [0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00] // add rdi, 4096
        + [0x48, 0xff, 0xc9]                       // dec rcx
        + [0x75, 0xf1]                             // jnz loop
        + [0xb8, 0x27, 0x00, 0x00, 0x00]           // mov eax, SYS_getpid
        + [0x0f, 0x05]                             // syscall
}

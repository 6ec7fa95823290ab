import CShim
import Glibc
import Platform
import Synchronization
import Testing

/// DedicatedThread's pthreads are reused: a body runs on a parked thread
/// when there is one, and must find it as a new thread would.
@Suite struct DedicatedThreadTests {
    /// Each body pins its thread to one CPU and leaves it so; the next body,
    /// on the same pthread once it is parked, still starts on every CPU of
    /// the process (placement pins a thread only for a pair's start). Seen
    /// failing with a parked thread kept on the CPU its body pinned it to.
    @Test(.enabled(if: processCPUs().count >= 2, "a one-CPU process cannot tell a pin from none"))
    func aReusedThreadStartsOnTheProcesssCPUs() throws {
        let process = processCPUs()
        let cpu = try #require(process.last)
        struct Seen: Sendable {
            var threads: Set<Int32> = []
            var starts = 0
            var maskedStarts: [[Int32]] = []
        }
        let seen = Mutex(Seen())
        for _ in 0..<20 {
            let thread = try DedicatedThread(name: "pin-and-leave") {
                let mask = threadCPUs()
                let tid = cshim_current_tid()
                seen.withLock { seen in
                    if seen.threads.contains(tid), mask != process { seen.maskedStarts.append(mask) }
                    if seen.threads.contains(tid) { seen.starts += 1 }
                    seen.threads.insert(tid)
                }
                _ = cshim_pin_thread(0, cpu)
            }
            thread.join()
            // The body has returned; its thread parks a moment later.
            usleep(2_000)
        }
        let result = seen.withLock { $0 }
        #expect(result.starts > 0, "no pthread was reused in 20 sequential threads")
        #expect(result.maskedStarts.isEmpty, "reused threads started pinned: \(result.maskedStarts)")
    }
}

/// The CPUs the process may run on, as CShim read them at load.
private func processCPUs() -> [Int32] {
    var cpus = [Int32](repeating: 0, count: 1024)
    let count = cshim_allowed_cpus(&cpus, Int32(cpus.count))
    return Array(cpus.prefix(Int(max(count, 0))))
}

/// The calling thread's own CPU mask, from its Cpus_allowed_list ("0-2,5").
private func threadCPUs() -> [Int32] {
    let status = readProcFile("/proc/thread-self/status")
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
          let list = line.split(separator: "\t").last else { return [] }
    return list.split(whereSeparator: { $0 == "," || $0.isWhitespace }).flatMap { part -> [Int32] in
        let bounds = part.split(separator: "-").compactMap { Int32($0) }
        guard let low = bounds.first, let high = bounds.last, low <= high else { return [] }
        return Array(low...high)
    }
}

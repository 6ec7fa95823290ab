import CShim
import Glibc
import Platform
import Sentry
import State
import Synchronization
import Testing

/// A Sentry thread stays pinned with its stub thread while it drives it
/// (`CPUPlacement`); these are the Sentry's sides of that: a sleep lets the
/// thread go, and threads the Sentry starts never inherit a pin.
@Suite struct CPUPlacementTests {
    /// A task asleep in the Sentry must be woken wherever its waker runs, so
    /// a block unpins the thread first.
    @Test func aBlockLetsItsPinnedThreadGo() throws {
        let seen = Mutex<(before: Int32, after: Int32)?>(nil)
        let thread = try State.HostThread.start {
            guard cshim_current_cpu() >= 0, cshim_pin_thread(0, cshim_current_cpu()) == 0 else { return }
            let before = cshim_pinned_cpu()
            let waiter = Waiter()
            _ = try? waiter.block(untilHostMonotonic: Clocks.hostNanoseconds(CLOCK_MONOTONIC) + 1_000_000)
            seen.withLock { $0 = (before, cshim_pinned_cpu()) }
        }
        pthread_join(thread, nil)
        let result = try #require(seen.withLock { $0 }, "the thread could not pin itself")
        #expect(result.before >= 0)
        #expect(result.after == -1)
    }

    /// A thread pinning itself again after a busy streak goes to a CPU of
    /// the process where no thread is pinned when its own has one: two
    /// busy pairs (a TCP writer and its reader) are not stacked on one CPU.
    @Test func aBusyThreadIsPinnedWhereNoOtherIs() throws {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = Int(cshim_allowed_cpus(&cpus, Int32(cpus.count)))
        try #require(count >= 2, "needs two CPUs")
        let (first, second) = (Int(cpus[0]), Int(cpus[1]))
        var pinned = [Int32](repeating: 0, count: Int(cpus[count - 1]) + 1)
        #expect(cshim_spread_choice(Int32(first), pinned, Int32(pinned.count)) == Int32(first), "its own CPU is free")
        pinned[first] = 1
        #expect(cshim_spread_choice(Int32(first), pinned, Int32(pinned.count)) == Int32(second))
        for cpu in cpus[0..<count] { pinned[Int(cpu)] = 1 }
        #expect(cshim_spread_choice(Int32(first), pinned, Int32(pinned.count)) == Int32(first), "every CPU busy: it stays")

        // The live counts follow the calling thread's own pins.
        let seen = Mutex<(pinned: Int32, released: Int32)?>(nil)
        let thread = try State.HostThread.start {
            guard cshim_pin_thread(0, Int32(first)) == 0 else { return }
            let whilePinned = cshim_pinned_threads(Int32(first))
            _ = cshim_unpin_thread(0)
            seen.withLock { $0 = (whilePinned, cshim_pinned_cpu()) }
        }
        pthread_join(thread, nil)
        let result = try #require(seen.withLock { $0 })
        #expect(result.pinned >= 1)
        #expect(result.released == -1)
    }

    /// HostThread.start from a pinned thread gives the new thread every CPU
    /// of the process (a new pthread inherits its creator's mask).
    @Test func hostThreadsStartedFromAPinnedThreadRunOnEveryCPU() throws {
        var cpus = [Int32](repeating: 0, count: 1024)
        let count = Int(cshim_allowed_cpus(&cpus, Int32(cpus.count)))
        try #require(count >= 2, "needs two CPUs")
        let first = cpus[0]
        let seen = Mutex<String?>(nil)
        let thread = try State.HostThread.start {
            guard cshim_pin_thread(0, first) == 0 else { return }
            if let inner = try? State.HostThread.start({ seen.withLock { $0 = cpusAllowed("thread-self") } }) {
                pthread_join(inner, nil)
            }
            _ = cshim_unpin_thread(0)
        }
        pthread_join(thread, nil)
        #expect(seen.withLock { $0 } == cpusAllowed("self"))
    }
}

/// The Cpus_allowed_list of /proc/`which`/status.
private func cpusAllowed(_ which: String) -> String {
    guard let file = fopen("/proc/\(which)/status", "r") else { return "" }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("Cpus_allowed_list:") {
            return String(text.dropFirst("Cpus_allowed_list:".count).filter { !$0.isWhitespace })
        }
    }
    return ""
}

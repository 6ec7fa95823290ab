import ArgumentParser
import Boot
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc events`: a container's statistics as runc's events print them (one
/// JSON object of type "stats" per line, runc's field names), once with
/// `--stats`, else every `--interval` until the container stops. The figures
/// are the host cgroup's when the container has one (linux.cgroupsPath: the
/// sandbox, its stubs and what the host charges them), else the Sentry's: CPU
/// time of the live processes, the memory the limit covers, the number of processes.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print a container's statistics (once with --stats, else every interval).")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the statistics once and exit.")
    var stats = false

    @Option(help: ArgumentHelp("Time between two reports (Go's duration syntax: 500ms, 5s, 1m).", valueName: "duration"))
    var interval = "5s"

    @Argument(help: ArgumentHelp("The container.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        guard let period = EventsCommand.nanoseconds(interval), period > 0 else {
            throw RunscError("events: --interval \(interval): expected a positive duration such as 500ms or 5s")
        }
        let handle = try ContainerHandle.open(id, in: try global.store())
        while true {
            let response = try handle.call(.statistics, command: "events")
            guard case .statistics(let statistics) = response else {
                throw RunscError("events: container \"\(handle.id)\": unexpected answer \(response)")
            }
            let event = Event(id: handle.id.rawValue,
                              data: Stats(statistics, cgroup: Cgroup.recorded(in: handle.directory)?.usage()))
            // Straight to the descriptor: each line is out before the next interval.
            let line = Array(try JSONEncoder().encode(event)) + [UInt8(ascii: "\n")]
            var offset = 0
            while offset < line.count {
                let written = line.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress.map { $0 + offset }, line.count - offset) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw RunscError("events: cannot write: \(SandboxLauncher.errnoText())") }
                offset += written
            }
            if stats { return }
            var pause = timespec(tv_sec: Int(clamping: period / 1_000_000_000), tv_nsec: Int(period % 1_000_000_000))
            var left = timespec()
            while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
        }
    }

    /// A Go duration with one unit (ns, us, µs, ms, s, m, h), in nanoseconds; nil if malformed or too large.
    static func nanoseconds(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000),
                                         ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = UInt64(text.dropLast(suffix.count)) else { continue }
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? nil : product
        }
        return nil
    }

    /// runc's events.Event with its stats (libcontainer's events/types.go names).
    struct Event: Encodable {
        var type = "stats"
        var id: String
        var data: Stats
    }

    struct Stats: Encodable {
        struct CPU: Encodable {
            struct Usage: Encodable {
                var total: UInt64
                var kernel: UInt64
                var user: UInt64
            }
            var usage: Usage
        }
        struct Memory: Encodable {
            struct Entry: Encodable {
                var limit: UInt64
                var usage: UInt64
                var failcnt: UInt64 = 0
            }
            var usage: Entry
        }
        struct Pids: Encodable {
            var current: UInt64
            var limit: UInt64?
        }
        var cpu: CPU
        var memory: Memory
        var pids: Pids

        init(_ statistics: ContainerStatistics, cgroup: Cgroup.Usage? = nil) {
            let user = cgroup?.cpuUserNanoseconds ?? statistics.cpuUserNanoseconds
            let system = cgroup?.cpuSystemNanoseconds ?? statistics.cpuSystemNanoseconds
            let total = cgroup?.cpuNanoseconds ?? user.addingReportingOverflow(system).partialValue
            cpu = CPU(usage: CPU.Usage(total: total, kernel: system, user: user))
            memory = Memory(usage: Memory.Entry(limit: cgroup?.memoryLimit ?? statistics.memoryLimit,
                                                usage: cgroup?.memoryUsage ?? statistics.memoryUsage,
                                                failcnt: cgroup?.memoryFailures ?? 0))
            pids = Pids(current: cgroup?.pids ?? statistics.processes, limit: cgroup?.pidsLimit)
        }
    }
}

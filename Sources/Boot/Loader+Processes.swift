import Glibc
import Sentry

/// `runsc ps` inside the sandbox: the container's processes from the kernel's
/// PID namespace, with the columns gVisor's control.Processes fills.
extension Loader {
    public func processes() -> [ContainerProcess] {
        let now = Clocks.hostNanoseconds(CLOCK_REALTIME)
        let groups = kernel.pidNamespace.allThreadGroups
        let starts = startTimes.withLock { starts -> [Int32: Int64] in
            // Forget the processes that are gone, so the table stays as small as the container.
            let alive = Set(groups.map(\.id))
            starts = starts.filter { alive.contains($0.key) }
            return starts
        }
        return groups.compactMap { group -> ContainerProcess? in
            let members = group.members
            guard let leader = group.leader ?? members.first else { return nil }
            let cpu = members.reduce(Int64(0)) { total, task in
                total.addingReportingOverflow(task.userTime.addingReportingOverflow(task.systemTime).partialValue)
                    .partialValue
            }
            let start = starts[group.id]
            return ContainerProcess(
                uid: leader.credentials.realUID, pid: group.id, ppid: group.parentID,
                threads: members.map(\.id).sorted(), c: start.map { Loader.percentCPU(cpu, since: $0, now: now) } ?? 0,
                tty: "?", stime: start.map { Loader.startTime($0, now: now) } ?? "?",
                time: Loader.goDuration(cpu), cmd: leader.name)
        }
    }

    /// `runsc events --stats`: the live processes' CPU time and the MemoryFile's use, as a memory cgroup counts it.
    public func statistics() -> ContainerStatistics {
        let kernel = self.kernel
        let tasks = kernel.pidNamespace.allThreadGroups.flatMap(\.members)
        let user = tasks.reduce(UInt64(0)) { $0.addingReportingOverflow(UInt64(clamping: $1.userTime)).partialValue }
        let system = tasks.reduce(UInt64(0)) { $0.addingReportingOverflow(UInt64(clamping: $1.systemTime)).partialValue }
        return ContainerStatistics(cpuUserNanoseconds: user, cpuSystemNanoseconds: system,
                                   memoryUsage: kernel.memoryFile.usedBytes, memoryLimit: kernel.memoryFile.limit,
                                   processes: UInt64(kernel.pidNamespace.allThreadGroups.count))
    }

    /// CPU time over lifetime in percent, capped at 99 as procps (and gVisor) do.
    static func percentCPU(_ cpu: Int64, since start: Int64, now: Int64) -> Int32 {
        let lifetime = now - start
        guard lifetime > 0 else { return 0 }
        let (scaled, overflow) = cpu.multipliedReportingOverflow(by: 100)
        return Int32(overflow ? 99 : min(99, scaled / lifetime))
    }

    /// "HH:MM" for a process started today (local time), "MonDD" otherwise, as ps and gVisor print it.
    static func startTime(_ nanoseconds: Int64, now: Int64) -> String {
        var startSeconds = time_t(nanoseconds / 1_000_000_000)
        var nowSeconds = time_t(now / 1_000_000_000)
        var started = tm()
        var today = tm()
        guard localtime_r(&startSeconds, &started) != nil, localtime_r(&nowSeconds, &today) != nil else { return "?" }
        var buffer = [CChar](repeating: 0, count: 16)
        let format = started.tm_yday == today.tm_yday && started.tm_year == today.tm_year ? "%H:%M" : "%b%d"
        let count = strftime(&buffer, buffer.count, format, &started)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A duration as Go's time.Duration prints it ("0s", "505.262µs", "1.5s", "2m3.25s"), which gVisor's ps shows.
    static func goDuration(_ nanoseconds: Int64) -> String {
        let value = max(0, nanoseconds)
        switch value {
        case 0: return "0s"
        case ..<1_000: return "\(value)ns"
        case ..<1_000_000: return decimal(value, unit: 1_000) + "µs"
        case ..<1_000_000_000: return decimal(value, unit: 1_000_000) + "ms"
        default:
            let hours = value / 3_600_000_000_000
            let minutes = value / 60_000_000_000 % 60
            let seconds = decimal(value % 60_000_000_000, unit: 1_000_000_000) + "s"
            if hours > 0 { return "\(hours)h\(minutes)m" + seconds }
            return minutes > 0 ? "\(minutes)m" + seconds : seconds
        }
    }

    /// `value / unit` with the remainder's digits, trailing zeros dropped.
    private static func decimal(_ value: Int64, unit: Int64) -> String {
        let whole = value / unit
        var remainder = value % unit
        guard remainder > 0 else { return String(whole) }
        var digits = String(unit).count - 1
        while remainder % 10 == 0 {
            remainder /= 10
            digits -= 1
        }
        let text = String(remainder)
        return "\(whole)." + String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

import CShim
import Glibc

/// /proc/[pid]/stat and statm in fs/proc/array.c's layout, and /proc/stat in
/// fs/proc/stat.c's, which ps and top parse by position. Times the Sentry
/// does not account are 0.
enum ProcProcessStatistics {
    static let pageSize: UInt64 = 4096

    /// /proc/[pid]/limits as proc_pid_limits prints it: each resource's
    /// name, soft and hard value ("unlimited" for RLIM_INFINITY) and unit.
    static func limits(_ limits: Limits) -> String {
        func column(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.utf8.count))
        }
        func value(_ limit: UInt64) -> String { limit == Limits.infinity ? "unlimited" : String(limit) }
        var out = column("Limit", 25) + " " + column("Soft Limit", 20) + " " + column("Hard Limit", 20) + " "
            + column("Units", 10) + "\n"
        for resource in Limits.Resource.allCases {
            let (name, unit) = limitName(resource)
            let limit = limits[resource]
            out += column(name, 25) + " " + column(value(limit.soft), 20) + " " + column(value(limit.hard), 20) + " "
            if let unit { out += column(unit, 10) }
            out += "\n"
        }
        return out
    }

    /// fs/proc/base.c's lnames.
    private static func limitName(_ resource: Limits.Resource) -> (String, String?) {
        switch resource {
        case .cpu: ("Max cpu time", "seconds")
        case .fsize: ("Max file size", "bytes")
        case .data: ("Max data size", "bytes")
        case .stack: ("Max stack size", "bytes")
        case .core: ("Max core file size", "bytes")
        case .rss: ("Max resident set", "bytes")
        case .nproc: ("Max processes", "processes")
        case .nofile: ("Max open files", "files")
        case .memlock: ("Max locked memory", "bytes")
        case .addressSpace: ("Max address space", "bytes")
        case .locks: ("Max file locks", "locks")
        case .sigpending: ("Max pending signals", "signals")
        case .msgqueue: ("Max msgqueue size", "bytes")
        case .nice: ("Max nice priority", nil)
        case .rtprio: ("Max realtime priority", nil)
        case .rttime: ("Max realtime timeout", "us")
        }
    }
    /// USER_HZ: the unit of every time in these files.
    static let ticksPerSecond: Int64 = 100

    /// /proc/stat: each CPU idle since boot (the Sentry does not account
    /// CPU time per CPU), boot time, and the process counts.
    static func system(_ source: ProcSource?) -> String {
        let uptime = max(0, source?.uptime() ?? 0)
        let idle = uptime / (1_000_000_000 / ticksPerSecond)
        let cpus = HostFacts.onlineCPUs
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let bootTime = Int64(now.tv_sec) - uptime / 1_000_000_000
        let processes = source?.processIDs() ?? []
        var text = "cpu  0 0 0 \(idle * Int64(cpus)) 0 0 0 0 0 0\n"
        for cpu in 0..<cpus { text += "cpu\(cpu) 0 0 0 \(idle) 0 0 0 0 0 0\n" }
        text += "intr 0\nctxt 0\nbtime \(bootTime)\nprocesses \(processes.last ?? 0)\n"
        text += "procs_running \(max(1, processes.count))\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n"
        return text
    }

    /// The 52 fields of /proc/[pid]/stat, or of task/[`id`]/stat.
    static func stat(_ process: ProcessSnapshot, id: Int32? = nil) -> String {
        let state = process.state.first.map(String.init) ?? "S"
        let scheduling = process.scheduling
        // task_prio: 20 + nice under the fair policies, -1 - priority under FIFO and RR.
        let priority = scheduling.realtimePriority > 0 ? -1 - scheduling.realtimePriority : 20 + scheduling.nice
        let fields: [String] = [
            String(id ?? process.processID), "(\(process.name))", state, String(process.parentProcessID),
            String(process.processGroupID), String(process.sessionID),
            "0", "-1", "4194560",              // tty_nr, tpgid, flags (PF_FORKNOEXEC | PF_RANDOMIZE)
            "0", "0", "0", "0",                // minflt, cminflt, majflt, cmajflt
            "0", "0", "0", "0",                // utime, stime, cutime, cstime
            String(priority), String(scheduling.nice), String(process.threadCount), "0", "0", // itrealvalue, starttime
            String(process.virtualBytes), String(process.residentBytes / pageSize),
            "18446744073709551615",            // rsslim: RLIM_INFINITY
            "0", "0", String(process.stackTop), "0", "0", // startcode, endcode, startstack, kstkesp, kstkeip
            "0", "0", "0", "0",                // signal, blocked, sigignore, sigcatch (obsolete here, as Linux)
            "0", "0", "0",                     // wchan, nswap, cnswap
            "17", "0", String(scheduling.realtimePriority), String(scheduling.policy), // exit_signal SIGCHLD, processor
            "0", "0", "0",                     // delayacct_blkio_ticks, guest_time, cguest_time
            "0", "0",                          // start_data, end_data
            String(process.breakRange.lowerBound),
            String(process.argumentRange.lowerBound), String(process.argumentRange.upperBound),
            String(process.environmentRange.lowerBound), String(process.environmentRange.upperBound),
            "0",                               // exit_code
        ]
        return fields.joined(separator: " ") + "\n"
    }

    /// size resident shared text lib data dt, in pages.
    static func statm(_ process: ProcessSnapshot) -> String {
        let size = process.virtualBytes / pageSize
        let resident = process.residentBytes / pageSize
        return "\(size) \(resident) 0 0 0 \(size) 0\n"
    }
}

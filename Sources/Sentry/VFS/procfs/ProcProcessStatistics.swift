import Glibc

/// /proc/[pid]/stat and statm in fs/proc/array.c's layout, and /proc/stat in
/// fs/proc/stat.c's, which ps and top parse by position. Times the Sentry
/// does not account are 0.
enum ProcProcessStatistics {
    static let pageSize: UInt64 = 4096
    /// USER_HZ: the unit of every time in these files.
    static let ticksPerSecond: Int64 = 100

    /// /proc/stat: each CPU idle since boot (the Sentry does not account
    /// CPU time per CPU), boot time, and the process counts.
    static func system(_ source: ProcSource?) -> String {
        let uptime = max(0, source?.uptime() ?? 0)
        let idle = uptime / (1_000_000_000 / ticksPerSecond)
        let cpus = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
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

    /// The 52 fields of /proc/[pid]/stat.
    static func stat(_ process: ProcessSnapshot) -> String {
        let state = process.state.first.map(String.init) ?? "S"
        let fields: [String] = [
            String(process.processID), "(\(process.name))", state, String(process.parentProcessID),
            String(process.processGroupID), String(process.sessionID),
            "0", "-1", "4194560",              // tty_nr, tpgid, flags (PF_FORKNOEXEC | PF_RANDOMIZE)
            "0", "0", "0", "0",                // minflt, cminflt, majflt, cmajflt
            "0", "0", "0", "0",                // utime, stime, cutime, cstime
            "20", "0", String(process.threadCount), "0", "0", // priority, nice, num_threads, itrealvalue, starttime
            String(process.virtualBytes), String(process.residentBytes / pageSize),
            "18446744073709551615",            // rsslim: RLIM_INFINITY
            "0", "0", String(process.stackTop), "0", "0", // startcode, endcode, startstack, kstkesp, kstkeip
            "0", "0", "0", "0",                // signal, blocked, sigignore, sigcatch (obsolete here, as Linux)
            "0", "0", "0",                     // wchan, nswap, cnswap
            "17", "0", "0", "0",               // exit_signal SIGCHLD, processor, rt_priority, policy
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

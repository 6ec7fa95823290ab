import FoundationEssentials
import Logging
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The host cgroup a container's sandbox joins when its spec names
/// `linux.cgroupsPath`, with the cgroupfs manager (runc's and gVisor's
/// runsc's job on the host side: the sandbox pivots into an empty root and
/// drops its capabilities, so it cannot do this itself). Both layouts are
/// detected: the unified one (cgroup v2, /sys/fs/cgroup/cgroup.controllers)
/// and per-controller v1 hierarchies found in /proc/self/mountinfo.
struct Cgroup: Codable, Equatable {
    /// The container's directory in each hierarchy, by controller name
    /// ("unified" for v2), the ones stats are read from included.
    var paths: [String: String]
    /// The directories this runsc created, parents first: only these are removed by `delete`.
    var created: [String]
    var unified: Bool

    /// The record beside the container's state, so `delete` finds what to remove even after a crash.
    static let fileName = "cgroup.json"
    static let unifiedRoot = "/sys/fs/cgroup"

    // MARK: Layout

    /// A mounted hierarchy: its mount point, the cgroup path its root is, and its controllers.
    struct Hierarchy {
        var mountPoint: String
        var root: String
        var controllers: [String]
    }

    /// The v1 hierarchies of /proc/self/mountinfo ("cgroup" mounts), or nil when the host is unified (v2).
    static func v1Hierarchies() -> [Hierarchy]? {
        if access(unifiedRoot + "/cgroup.controllers", F_OK) == 0 { return nil }
        var hierarchies: [Hierarchy] = []
        for line in readFile("/proc/self/mountinfo").split(separator: "\n") {
            // "id parent major:minor root mountpoint options - fstype source superoptions"
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let before = halves[0].split(separator: " "), after = halves[1].split(separator: " ")
            guard before.count >= 5, after.count >= 3, after[0] == "cgroup" else { continue }
            let controllers = after[2].split(separator: ",").map(String.init).filter {
                !["rw", "ro"].contains($0) && !$0.contains("=") || $0.hasPrefix("name=")
            }
            hierarchies.append(Hierarchy(mountPoint: unescape(String(before[4])), root: unescape(String(before[3])),
                                         controllers: controllers))
        }
        return hierarchies
    }

    /// This process's cgroup path in each v1 hierarchy (by controller) or in the unified one (key "").
    static func ownPaths() -> [String: String] {
        var paths: [String: String] = [:]
        for line in readFile("/proc/self/cgroup").split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[1].isEmpty { paths[""] = String(fields[2]); continue }
            for controller in fields[1].split(separator: ",") { paths[String(controller)] = String(fields[2]) }
        }
        return paths
    }

    // MARK: cgroupsPath

    /// The cgroup path `cgroupsPath` names, relative to a hierarchy's root:
    /// absolute as is, relative under `own` (the caller's cgroup there), and
    /// with `--systemd-cgroup` the "slice:prefix:name" form mapped to the
    /// directory systemd would make (systemd does not run here, so the
    /// directories are made with cgroupfs).
    static func resolve(_ cgroupsPath: String, own: String, systemd: Bool) throws -> String {
        if systemd {
            let parts = cgroupsPath.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 3, !parts[2].isEmpty else {
                throw RunscError("linux.cgroupsPath \"\(cgroupsPath)\": --systemd-cgroup expects \"slice:prefix:name\"")
            }
            let slice = parts[0].isEmpty ? "system.slice" : parts[0]
            let unit = parts[2].hasSuffix(".slice") ? parts[2] : (parts[1].isEmpty ? parts[2] : parts[1] + "-" + parts[2]) + ".scope"
            let sliceDirectory = try sliceDirectory(slice)
            return normalized("/" + sliceDirectory + "/" + unit)
        }
        if cgroupsPath.hasPrefix("/") { return normalized(cgroupsPath) }
        return normalized(own + "/" + cgroupsPath)
    }

    /// systemd's nesting of a slice name: "a-b-c.slice" lives in "a.slice/a-b.slice/a-b-c.slice".
    static func sliceDirectory(_ slice: String) throws -> String {
        guard slice.hasSuffix(".slice"), !slice.contains("/") else {
            throw RunscError("linux.cgroupsPath: \"\(slice)\" is not a systemd slice name")
        }
        if slice == "-.slice" { return "" }
        let words = slice.dropLast(".slice".count).split(separator: "-", omittingEmptySubsequences: false)
        guard !words.contains(where: \.isEmpty) else { throw RunscError("linux.cgroupsPath: invalid slice name \"\(slice)\"") }
        return (1...words.count).map { words.prefix($0).joined(separator: "-") + ".slice" }.joined(separator: "/")
    }

    /// `path` without empty, "." or ".." components (".." never climbs above the root).
    static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return "/" + parts.joined(separator: "/")
    }

    // MARK: Resources

    /// The files to write, by controller, for `resources`; a value the
    /// kernel would refuse or misread is an error naming its field, before
    /// anything is created.
    static func settings(_ resources: Spec.Resources?, unified: Bool) throws -> [(controller: String, file: String, value: String, field: String)] {
        var settings: [(String, String, String, String)] = []
        func add(_ controller: String, _ file: String, _ value: String, _ field: String) {
            settings.append((controller, file, value, field))
        }
        func limit(_ value: Int64, _ field: String) throws -> String {
            if value == -1 { return unified ? "max" : "-1" }
            guard value > 0 else {
                throw RunscError("linux.resources.\(field): \(value) is not a limit (a positive number, or -1 for none)")
            }
            return String(value)
        }
        if let memory = resources?.memory {
            if let value = memory.limit {
                add("memory", unified ? "memory.max" : "memory.limit_in_bytes", try limit(value, "memory.limit"), "memory.limit")
            }
            if let value = memory.reservation {
                add("memory", unified ? "memory.low" : "memory.soft_limit_in_bytes", try limit(value, "memory.reservation"),
                    "memory.reservation")
            }
            if let swap = memory.swap {
                let text = try limit(swap, "memory.swap")
                // OCI's swap is memory plus swap, as v1's memsw; v2 limits swap alone.
                if swap != -1, let memoryLimit = memory.limit, memoryLimit != -1, swap < memoryLimit {
                    throw RunscError("linux.resources.memory.swap: \(swap) is below memory.limit \(memoryLimit) (swap counts memory plus swap)")
                }
                if unified {
                    var swapOnly = "max"
                    if swap != -1 {
                        // runc: a swap limit without a memory limit cannot be split into swap alone.
                        guard let memoryLimit = memory.limit, memoryLimit > 0 else {
                            throw RunscError("linux.resources.memory.swap: needs a memory.limit above 0 on cgroup v2")
                        }
                        // swap >= memoryLimit > 0 (checked above): the difference cannot overflow.
                        swapOnly = String(swap - memoryLimit)
                    }
                    add("memory", "memory.swap.max", swapOnly, "memory.swap")
                } else {
                    add("memory", "memory.memsw.limit_in_bytes", text, "memory.swap")
                }
            }
            if let swappiness = memory.swappiness, !unified {
                guard swappiness <= 100 else { throw RunscError("linux.resources.memory.swappiness: \(swappiness) is above 100") }
                add("memory", "memory.swappiness", String(swappiness), "memory.swappiness")
            }
        }
        if let cpu = resources?.cpu {
            if let shares = cpu.shares, shares != 0 {
                guard (2...262_144).contains(shares) else {
                    throw RunscError("linux.resources.cpu.shares: \(shares) is outside 2...262144")
                }
                // runc's conversion of shares (2...262144) to weight (1...10000).
                if unified { add("cpu", "cpu.weight", String(1 + ((shares - 2) * 9999) / 262_142), "cpu.shares") }
                else { add("cpu", "cpu.shares", String(shares), "cpu.shares") }
            }
            if let period = cpu.period, period != 0, !(1_000...1_000_000).contains(period) {
                throw RunscError("linux.resources.cpu.period: \(period) is outside 1000...1000000 microseconds")
            }
            if let quota = cpu.quota, quota != 0, quota != -1, quota < 1_000 {
                throw RunscError("linux.resources.cpu.quota: \(quota) is below 1000 microseconds (or -1 for none)")
            }
            if unified, cpu.quota != nil || cpu.period != nil {
                let quota = cpu.quota.map { $0 <= 0 ? "max" : String($0) } ?? "max"
                add("cpu", "cpu.max", quota + " " + String(cpu.period.flatMap { $0 == 0 ? nil : $0 } ?? 100_000), "cpu.quota")
            } else if !unified {
                if let period = cpu.period, period != 0 { add("cpu", "cpu.cfs_period_us", String(period), "cpu.period") }
                if let quota = cpu.quota, quota != 0 { add("cpu", "cpu.cfs_quota_us", quota < 0 ? "-1" : String(quota), "cpu.quota") }
            }
            if let cpus = cpu.cpus, !cpus.isEmpty { add("cpuset", "cpuset.cpus", cpus, "cpu.cpus") }
            if let mems = cpu.mems, !mems.isEmpty { add("cpuset", "cpuset.mems", mems, "cpu.mems") }
        }
        if let value = resources?.pids?.limit, value != 0 {
            // runc writes "max" for -1; anything else below 1 names no limit the kernel has.
            let text = value == -1 ? "max" : try limit(value, "pids.limit")
            add("pids", "pids.max", text, "pids.limit")
        }
        return settings
    }

    // MARK: Setup

    /// Makes the container's cgroup for `cgroupsPath` in every hierarchy,
    /// writes `resources` into it, and moves this process into it, so the
    /// sandbox spawned next (and the stubs it forks) start inside;
    /// `leave(to:)` brings this process back. A controller the host lacks is a
    /// warning; a value the kernel refuses is an error naming its field, and
    /// what was made is removed again.
    static func enter(_ cgroupsPath: String, resources: Spec.Resources?, systemd: Bool, own: [String: String],
                      logger: Logger?) throws -> Cgroup {
        let hierarchies = v1Hierarchies()
        let unified = hierarchies == nil
        let settings = try settings(resources, unified: unified)
        if systemd {
            logger?.info("--systemd-cgroup: systemd is not managing cgroups here; \(cgroupsPath) is made with cgroupfs where systemd would put it")
        }
        var cgroup = Cgroup(paths: [:], created: [], unified: unified)
        do {
            if let hierarchies {
                for hierarchy in hierarchies {
                    let key = hierarchy.controllers.first ?? hierarchy.mountPoint
                    let relative = try resolve(cgroupsPath, own: own[key] ?? "/", systemd: systemd)
                    let directory = try cgroup.make(relative, in: hierarchy, cpuset: hierarchy.controllers.contains("cpuset"))
                    for controller in hierarchy.controllers { cgroup.paths[controller] = directory }
                }
            } else {
                let relative = try resolve(cgroupsPath, own: own[""] ?? "/", systemd: systemd)
                let directory = try cgroup.make(relative, in: Hierarchy(mountPoint: unifiedRoot, root: "/", controllers: []), cpuset: false)
                cgroup.paths["unified"] = directory
                try enableControllers(above: directory)
            }
            for setting in settings {
                guard let directory = cgroup.directory(for: setting.controller) else {
                    logger?.warning("linux.resources.\(setting.field): the host has no \(setting.controller) cgroup controller; not applied")
                    continue
                }
                let path = directory + "/" + setting.file
                if access(path, F_OK) != 0 {
                    logger?.warning("linux.resources.\(setting.field): \(path) does not exist (controller not enabled); not applied")
                    continue
                }
                if let code = writeFile(path, setting.value) {
                    throw RunscError("linux.resources.\(setting.field): cannot write \(setting.value) to \(path): \(String(cString: strerror(code)))")
                }
            }
            for directory in Set(cgroup.paths.values).sorted() {
                if let code = writeFile(directory + "/cgroup.procs", String(getpid())) {
                    throw RunscError("linux.cgroupsPath: cannot join \(directory): \(String(cString: strerror(code)))")
                }
            }
        } catch {
            leave(to: own)
            cgroup.remove(logger: logger)
            throw error
        }
        return cgroup
    }

    /// Brings this process back to the cgroups `own` (`ownPaths()` before `enter`) names.
    static func leave(to own: [String: String]) {
        if let hierarchies = v1Hierarchies() {
            for hierarchy in hierarchies {
                guard let key = hierarchy.controllers.first, let path = own[key],
                      let directory = hostDirectory(path, in: hierarchy) else { continue }
                _ = writeFile(directory + "/cgroup.procs", String(getpid()))
            }
        } else if let path = own[""] {
            _ = writeFile(unifiedRoot + normalized(path) + "/cgroup.procs", String(getpid()))
        }
    }

    /// The host directory of cgroup `path` in `hierarchy` (nil when the hierarchy's root is not above it).
    static func hostDirectory(_ path: String, in hierarchy: Hierarchy) -> String? {
        let path = normalized(path), root = normalized(hierarchy.root)
        if root == "/" { return hierarchy.mountPoint + (path == "/" ? "" : path) }
        guard path == root || path.hasPrefix(root + "/") else { return nil }
        return hierarchy.mountPoint + path.dropFirst(root.count)
    }

    /// Creates `relative` in `hierarchy` level by level, recording each new directory.
    /// A new v1 cpuset level starts with no CPUs and memory nodes and refuses
    /// members, so it gets its parent's, as runc gives it.
    private mutating func make(_ relative: String, in hierarchy: Hierarchy, cpuset: Bool) throws -> String {
        guard let target = Cgroup.hostDirectory(relative, in: hierarchy) else {
            throw RunscError("linux.cgroupsPath: \(relative) is outside the \(hierarchy.mountPoint) hierarchy's root \(hierarchy.root)")
        }
        var current = hierarchy.mountPoint
        for part in target.dropFirst(hierarchy.mountPoint.count).split(separator: "/") {
            let parent = current
            current += "/" + part
            if mkdir(current, 0o755) == 0 {
                created.append(current)
                if cpuset {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let value = Cgroup.readFile(parent + "/" + file).trimmingTrailingNewlines()
                        _ = Cgroup.writeFile(current + "/" + file, value)
                    }
                }
            } else if errno != EEXIST {
                throw RunscError("linux.cgroupsPath: cannot create \(current): \(String(cString: strerror(errno)))")
            }
        }
        return current
    }

    /// On v2, a child sees a controller's files only when every level above enables it.
    private static func enableControllers(above directory: String) throws {
        var levels: [String] = []
        var current = directory
        while current.count > unifiedRoot.count, let slash = current.lastIndex(of: "/") {
            current = String(current[..<slash])
            levels.insert(current, at: 0)
        }
        for level in levels {
            let available = readFile(level + "/cgroup.controllers").split(whereSeparator: { $0 == " " || $0 == "\n" })
            for controller in available where ["cpu", "cpuset", "memory", "pids", "io"].contains(controller) {
                _ = writeFile(level + "/cgroup.subtree_control", "+" + controller)
            }
        }
    }

    /// The directory of `controller` (v2: the one directory).
    func directory(for controller: String) -> String? {
        unified ? paths["unified"] : paths[controller]
    }

    // MARK: Removal

    /// Removes the directories this runsc made, deepest first. The
    /// container's own directory, still busy while its last process exits,
    /// is retried for a moment; a parent another cgroup still lives in (conmon's
    /// beside ours under podman's libpod_parent) stays.
    func remove(logger: Logger?) {
        let own = Set(paths.values)
        for directory in created.reversed() {
            var attempts = 0
            while rmdir(directory) != 0 {
                let code = errno
                if code == ENOENT || code == EBUSY && !own.contains(directory) { break }
                attempts += 1
                guard code == EBUSY, attempts < 100 else {
                    logger?.warning("cannot remove cgroup \(directory): \(String(cString: strerror(code)))")
                    break
                }
                usleep(10_000)
            }
        }
    }

    /// Removes the cgroup recorded in a container's state directory, if any.
    static func removeRecorded(in stateDirectory: String, logger: Logger? = nil) {
        guard let cgroup = recorded(in: stateDirectory) else { return }
        cgroup.remove(logger: logger)
    }

    static func recorded(in stateDirectory: String) -> Cgroup? {
        let text = readFile(stateDirectory + "/" + fileName)
        guard !text.isEmpty else { return nil }
        return try? JSONDecoder().decode(Cgroup.self, from: Data(text.utf8))
    }

    func record(in stateDirectory: String) throws {
        let bytes = try JSONEncoder().encode(self)
        if let code = Cgroup.writeFile(stateDirectory + "/" + Cgroup.fileName, String(decoding: bytes, as: UTF8.self), create: true) {
            throw RunscError("cannot record the cgroup in \(stateDirectory): \(String(cString: strerror(code)))")
        }
    }

    // MARK: Statistics

    /// What the cgroup counts, as runc reports it; nil for a figure the host does not keep.
    struct Usage {
        var memoryUsage: UInt64?
        var memoryLimit: UInt64?
        var memoryFailures: UInt64?
        var cpuNanoseconds: UInt64?
        var cpuUserNanoseconds: UInt64?
        var cpuSystemNanoseconds: UInt64?
        var pids: UInt64?
        var pidsLimit: UInt64?
    }

    func usage() -> Usage {
        var usage = Usage()
        func number(_ controller: String, _ file: String) -> UInt64? {
            guard let directory = directory(for: controller) else { return nil }
            return UInt64(Cgroup.readFile(directory + "/" + file).trimmingTrailingNewlines())
        }
        func keyed(_ controller: String, _ file: String) -> [String: UInt64] {
            guard let directory = directory(for: controller) else { return [:] }
            var values: [String: UInt64] = [:]
            for line in Cgroup.readFile(directory + "/" + file).split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count == 2, let value = UInt64(fields[1]) { values[String(fields[0])] = value }
            }
            return values
        }
        usage.pids = number("pids", "pids.current")
        usage.pidsLimit = number("pids", "pids.max")
        if unified {
            usage.memoryUsage = number("memory", "memory.current")
            usage.memoryLimit = number("memory", "memory.max")
            usage.memoryFailures = keyed("memory", "memory.events")["max"]
            let cpu = keyed("cpu", "cpu.stat")
            usage.cpuNanoseconds = cpu["usage_usec"].map { $0.multipliedReportingOverflow(by: 1_000).partialValue }
            usage.cpuUserNanoseconds = cpu["user_usec"].map { $0.multipliedReportingOverflow(by: 1_000).partialValue }
            usage.cpuSystemNanoseconds = cpu["system_usec"].map { $0.multipliedReportingOverflow(by: 1_000).partialValue }
        } else {
            usage.memoryUsage = number("memory", "memory.usage_in_bytes")
            usage.memoryLimit = number("memory", "memory.limit_in_bytes")
            usage.memoryFailures = number("memory", "memory.failcnt")
            usage.cpuNanoseconds = number("cpuacct", "cpuacct.usage")
            // cpuacct.stat counts in USER_HZ ticks.
            let ticks = UInt64(clamping: sysconf(Int32(_SC_CLK_TCK)))
            let stat = keyed("cpuacct", "cpuacct.stat")
            if ticks > 0 {
                usage.cpuUserNanoseconds = stat["user"].map { $0.multipliedReportingOverflow(by: 1_000_000_000 / ticks).partialValue }
                usage.cpuSystemNanoseconds = stat["system"].map { $0.multipliedReportingOverflow(by: 1_000_000_000 / ticks).partialValue }
            }
        }
        return usage
    }

    // MARK: Files

    static func readFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `value` in one write (cgroup files take one value per write); the errno on failure.
    static func writeFile(_ path: String, _ value: String, create: Bool = false) -> Int32? {
        let fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0o600)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        while true {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written < 0 { return errno }
            return written == bytes.count ? nil : EIO
        }
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    private static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        let source = Array(text.utf8)
        var index = 0
        while index < source.count {
            if source[index] == UInt8(ascii: "\\"), index + 3 < source.count,
               let value = UInt8(String(decoding: source[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(source[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

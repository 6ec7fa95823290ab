#if canImport(Glibc)
import Glibc
#endif
import State

/// One named benchmark: `runsc-bench NAME` runs it.
struct BenchSection: Sendable {
    var name: String
    var summary: String
    /// Lines for `--help`, e.g. `--mib N   buffer size (default 1024)`.
    var options: [String] = []
    var run: @Sendable (BenchOptions) throws -> Void
}

/// `--name value` pairs after the section names.
struct BenchOptions {
    private var values: [String: String] = [:]

    init(_ arguments: [String]) {
        var index = 0
        while index < arguments.count {
            let key = String(arguments[index].drop { $0 == "-" })
            if index + 1 < arguments.count && !arguments[index + 1].hasPrefix("--") {
                values[key] = arguments[index + 1]
                index += 2
            } else {
                values[key] = "true"
                index += 1
            }
        }
    }

    func int(_ name: String, default fallback: Int) -> Int {
        values[name].flatMap { Int($0) } ?? fallback
    }

    func string(_ name: String, default fallback: String) -> String {
        values[name] ?? fallback
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    let line = "runsc-bench: " + message + "\n"
    _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

/// Monotonic seconds.
func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// CPU seconds used by the whole process (all threads).
func cpuNow() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Wall-clock and CPU seconds of one run.
struct Timing {
    var wall: Double
    var cpu: Double
}

/// The best (shortest) wall-clock time of `repeats` runs of `body`: the
/// machine is shared, and the best run is the one least disturbed by others.
func bestTime(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    try bestTiming(repeats, body).wall
}

/// The best wall-clock and the best CPU time of `repeats` runs of `body`.
/// CPU time does not grow when other processes take the CPUs away, so it
/// shows what the code costs even on a loaded machine.
func bestTiming(_ repeats: Int, _ body: () throws -> Void) rethrows -> Timing {
    var best = Timing(wall: .infinity, cpu: .infinity)
    for _ in 0..<max(repeats, 1) {
        let start = now(), startCPU = cpuNow()
        try body()
        best.wall = min(best.wall, now() - start)
        best.cpu = min(best.cpu, cpuNow() - startCPU)
    }
    return best
}

/// A plain text table with right-aligned numbers.
struct Table {
    var columns: [String]
    var rows: [[String]] = []

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        let widths = columns.indices.map { column in
            ([columns[column]] + rows.map { column < $0.count ? $0[column] : "" }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return index == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        return ([line(columns), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line))
            .joined(separator: "\n")
    }
}

func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func format(_ value: Double, decimals: Int = 0) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return decimals == 0 ? String(Int(rounded)) : String(rounded)
}

/// Runs `body(index)` for `0..<count` on `count` pthreads and waits for all.
func onThreads(_ count: Int, _ body: @escaping (Int) -> Void) {
    var threads: [pthread_t] = []
    for index in 0..<count {
        if let thread = try? HostThread.start({ body(index) }) {
            threads.append(thread)
        } else {
            body(index)
        }
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// The path of `name` in this executable's directory.
func siblingExecutable(_ name: String) -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return name }
    let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = path.lastIndex(of: "/") else { return name }
    return String(path[...slash]) + name
}

/// The whole file as text without NUL bytes (gVisor's restored output starts with a run of them).
func readText(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var contents: [UInt8] = []
    var bytes = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { break }
        contents += bytes[0..<count].lazy.filter { $0 != 0 }
    }
    return String(decoding: contents, as: UTF8.self)
}

/// Replaces the file at `path` with `bytes`.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw BenchError("open \(path): errno \(errno)") }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { throw BenchError("write \(path): errno \(errno)") }
        written += count
    }
}

/// Runs commands with posix_spawn (a detached `runsc` leaves a sandbox
/// holding its stdout, so only the child's own exit is waited for).
enum ProcessRunner {
    static func check(_ arguments: [String], stdout: String = "/dev/null", stderr: String? = nil) throws {
        let status = try run(arguments, stdout: stdout, stderr: stderr)
        guard status == 0 else {
            throw BenchError("\(arguments.joined(separator: " ")) exited with \(status)")
        }
    }

    static func run(_ arguments: [String], stdout: String = "/dev/null", stderr: String? = nil) throws -> Int32 {
        let pid = try spawn(arguments, stdout: stdout, stderr: stderr)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Starts `arguments` with stdin from /dev/null; `stderr` (appended to) or this process's.
    static func spawn(_ arguments: [String], stdout: String, stderr: String?) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let stderr {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard result == 0 else { throw BenchError("cannot run \(arguments[0]): \(result)") }
        return pid
    }
}

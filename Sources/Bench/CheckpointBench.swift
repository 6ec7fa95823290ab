#if canImport(Glibc)
import Glibc
#endif

extension BenchSection {
    /// `runsc checkpoint` and `runsc restore` of a program with touched
    /// memory, per size and compression: the time from the command to a
    /// complete image, from `restore` to the program's next line, and the
    /// image's size. The same workload under Debian's gVisor and CRIU, in the
    /// same run, gives the ratios the goals are stated in. Runs the `runsc`
    /// binary beside this one (build both in release mode) on
    /// fixtures/bin/ckpt_touch.
    static let checkpoint = BenchSection(
        name: "checkpoint",
        summary: "runsc checkpoint / restore time and image size per touched memory and compression, vs gVisor and CRIU",
        options: ["--sizes LIST         MiB of touched memory (default 64,256,1024)",
                  "--compressions LIST  none,lz4,zstd (default all)",
                  "--reference NAME     our compression the ratios divide by (default lz4)",
                  "--repeats N          checkpoint/restore rounds per row, best of each kept (default 3)",
                  "--others LIST        gvisor,criu (default both; none to skip)",
                  "--gvisor PATH        Debian's gVisor runsc (default /usr/bin/runsc)",
                  "--criu PATH          criu (default /usr/sbin/criu)",
                  "--runsc PATH         the runsc binary (default: beside runsc-bench)",
                  "--workload PATH      the static workload (default fixtures/bin/ckpt_touch)"],
        run: runCheckpointBench)
}

/// One runtime's checkpoint and restore of one size, or why it failed.
private struct CheckpointMeasurement {
    var checkpoint = 0.0
    var restore = 0.0
    /// Ours: from `restore` until the background load of the memory is done
    /// (the program runs again before that). Others load eagerly.
    var memoryLoaded: Double?
    var imageBytes: UInt64 = 0
    var failure: String?

    /// The best of each figure over `repeats` rounds of `measure`; a failing
    /// round ends it (a tool that fails here fails every time) and is the result.
    static func best(of repeats: Int, _ measure: () -> CheckpointMeasurement) -> CheckpointMeasurement {
        var best: CheckpointMeasurement?
        for _ in 0..<max(repeats, 1) {
            let round = measure()
            if round.failure != nil { return round }
            guard var current = best else {
                best = round
                continue
            }
            current.checkpoint = min(current.checkpoint, round.checkpoint)
            current.restore = min(current.restore, round.restore)
            if let loaded = round.memoryLoaded { current.memoryLoaded = min(current.memoryLoaded ?? loaded, loaded) }
            current.imageBytes = round.imageBytes
            best = current
        }
        return best ?? CheckpointMeasurement(failure: "no round ran")
    }
}

func runCheckpointBench(_ options: BenchOptions) throws {
    let runsc = options.string("runsc", default: siblingExecutable("runsc"))
    let workload = options.string("workload", default: "fixtures/bin/ckpt_touch")
    guard access(runsc, X_OK) == 0, access(workload, R_OK) == 0 else {
        print("checkpoint: skipped (needs \(runsc) and \(workload); build runsc and the fixtures first)")
        return
    }
    let sizes = options.string("sizes", default: "64,256,1024").split(separator: ",").compactMap { Int($0) }
    let compressions = options.string("compressions", default: "none,lz4,zstd").split(separator: ",").map(String.init)
    let others = options.string("others", default: "gvisor,criu").split(separator: ",").map(String.init)
    let reference = options.string("reference", default: compressions.contains("lz4") ? "lz4" : compressions.first ?? "")
    let gvisor = options.string("gvisor", default: "/usr/bin/runsc")
    let criu = options.string("criu", default: "/usr/sbin/criu")
    let repeats = max(options.int("repeats", default: 3), 1)
    var template = Array("/tmp/runsc-bench-checkpoint-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw CheckpointBenchError("mkdtemp: errno \(errno)") }
    let work = String(cString: created)
    defer { _ = try? ProcessRunner.run(["/bin/rm", "-rf", work]) }

    print("checkpoint: \(runsc), workload \(workload) (1/4 of each page random, the rest a pattern); "
          + "best of \(repeats) rounds; ratios are the row's value over ours with \(reference); "
          + "restore s is until the program prints again, memory s until our background load of its memory is done")
    var table = Table(columns: ["MiB", "runtime", "compression", "checkpoint s", "restore s", "memory s", "image MiB", "image %",
                                "ckpt ratio", "restore ratio", "image ratio", "note"])
    for size in sizes {
        let bundle = work + "/bundle-\(size)"
        _ = try ProcessRunner.run(["/bin/mkdir", "-p", bundle + "/rootfs/bin"])
        _ = try ProcessRunner.run(["/bin/cp", workload, bundle + "/rootfs/bin/ckpt_touch"])
        try ProcessRunner.check([runsc, "spec", "--bundle", bundle, "--", "/bin/ckpt_touch", String(size)])
        var rows: [(runtime: String, compression: String, CheckpointMeasurement)] = []
        for compression in compressions {
            rows.append(("ours", compression, CheckpointMeasurement.best(of: repeats) {
                measureOurs(runsc: runsc, size: size, compression: compression, bundle: bundle, work: work)
            }))
        }
        if others.contains("gvisor") {
            rows.append(("gvisor", "flate", CheckpointMeasurement.best(of: repeats) {
                measureGVisor(gvisor, size: size, bundle: bundle, work: work)
            }))
        }
        if others.contains("criu") {
            rows.append(("criu", "raw", CheckpointMeasurement.best(of: repeats) {
                measureCRIU(criu, size: size, workload: workload, work: work)
            }))
        }
        let ours = rows.first { $0.runtime == "ours" && $0.compression == reference && $0.2.failure == nil }?.2
        for (runtime, compression, measurement) in rows {
            if let failure = measurement.failure {
                table.add([String(size), runtime, compression] + Array(repeating: "-", count: 8)
                          + ["failed: " + failure])
                continue
            }
            func ratio(_ value: Double, _ base: Double?) -> String {
                guard let base, base > 0 else { return "-" }
                return format(value / base, decimals: 2)
            }
            table.add([String(size), runtime, compression, format(measurement.checkpoint, decimals: 3),
                       format(measurement.restore, decimals: 3),
                       measurement.memoryLoaded.map { format($0, decimals: 3) } ?? "-",
                       format(Double(measurement.imageBytes) / 1_048_576, decimals: 1),
                       format(Double(measurement.imageBytes) * 100 / Double(size << 20), decimals: 1),
                       ratio(measurement.checkpoint, ours?.checkpoint), ratio(measurement.restore, ours?.restore),
                       ratio(Double(measurement.imageBytes), ours.map { Double($0.imageBytes) })])
        }
    }
    print(table.render())
}

/// Ours: `run --detach`, `checkpoint`, then `restore --detach` until the next tick.
private func measureOurs(runsc: String, size: Int, compression: String, bundle: String,
                         work: String) -> CheckpointMeasurement {
    let root = work + "/state"
    let id = "bench-\(size)-\(compression)"
    let image = work + "/image-\(id)"
    let restored = id + "-restored"
    defer {
        _ = try? ProcessRunner.run([runsc, "--root", root, "delete", "--force", id])
        _ = try? ProcessRunner.run([runsc, "--root", root, "delete", "--force", restored])
        _ = try? ProcessRunner.run(["/bin/rm", "-rf", image])
    }
    return measuring { measurement in
        try ProcessRunner.check([runsc, "--root", root, "run", "--detach", "--bundle", bundle, id],
                                stdout: work + "/\(id).out")
        try waitForText("ready", in: work + "/\(id).out", timeout: 120)
        let startSave = now()
        try ProcessRunner.check([runsc, "--root", root, "checkpoint", "--compression", compression,
                                 "--image-path", image, id])
        measurement.checkpoint = now() - startSave
        _ = try ProcessRunner.run([runsc, "--root", root, "delete", "--force", id])
        measurement.imageBytes = directorySize(image)
        let startRestore = now()
        let log = work + "/\(restored).log"
        try ProcessRunner.check([runsc, "--root", root, "--log", log, "--debug", "restore", "--detach",
                                 "--image-path", image, "--bundle", bundle, restored],
                                stdout: work + "/\(restored).out")
        try waitForText("tick", in: work + "/\(restored).out", timeout: 120)
        measurement.restore = now() - startRestore
        try waitForText("memory loaded in the background", in: log, timeout: 120)
        measurement.memoryLoaded = now() - startRestore
        _ = try? ProcessRunner.run(["/bin/rm", "-f", log, work + "/\(restored).out", work + "/\(id).out"])
    }
}

/// Debian's gVisor on the same bundle (ptrace platform, no network: the
/// workload needs none). Its restore writes at the saved offset, so the new
/// output starts with NUL bytes; the tick is searched for in the whole file.
private func measureGVisor(_ gvisor: String, size: Int, bundle: String, work: String) -> CheckpointMeasurement {
    guard access(gvisor, X_OK) == 0 else { return CheckpointMeasurement(failure: "\(gvisor) is not installed") }
    let base = [gvisor, "--platform=ptrace", "--network=none", "--root", work + "/gvisor-state"]
    let id = "gvisor-\(size)"
    let restored = id + "-restored"
    let image = work + "/image-\(id)"
    let errors = work + "/\(id).err"
    defer {
        _ = try? ProcessRunner.run(base + ["delete", "--force", id])
        _ = try? ProcessRunner.run(base + ["delete", "--force", restored])
        _ = try? ProcessRunner.run(["/bin/rm", "-rf", image])
    }
    return measuring(errors: errors) { measurement in
        try ProcessRunner.check(base + ["run", "--detach", "--bundle", bundle, id],
                                stdout: work + "/\(id).out", stderr: errors)
        try waitForText("ready", in: work + "/\(id).out", timeout: 300)
        let startSave = now()
        try ProcessRunner.check(base + ["checkpoint", "--image-path", image, id], stderr: errors)
        measurement.checkpoint = now() - startSave
        _ = try ProcessRunner.run(base + ["delete", "--force", id])
        measurement.imageBytes = directorySize(image)
        let startRestore = now()
        try ProcessRunner.check(base + ["restore", "--detach", "--image-path", image, "--bundle", bundle, restored],
                                stdout: work + "/\(restored).out", stderr: errors)
        try waitForText("tick", in: work + "/\(restored).out", timeout: 300)
        measurement.restore = now() - startRestore
    }
}

/// CRIU on a native run of the workload: `dump` (which kills it), then
/// `restore --restore-detached` until the restored process prints past the
/// end the output had at the dump (CRIU reopens the same file at its offset).
private func measureCRIU(_ criu: String, size: Int, workload: String, work: String) -> CheckpointMeasurement {
    guard access(criu, X_OK) == 0 else { return CheckpointMeasurement(failure: "\(criu) is not installed") }
    let image = work + "/image-criu-\(size)"
    let output = work + "/criu-\(size).out"
    let errors = work + "/criu-\(size).err"
    let pidFile = work + "/criu-\(size).pid"
    var native: pid_t = 0
    defer {
        if native > 0 {
            kill(native, SIGKILL)
            var status: Int32 = 0
            while waitpid(native, &status, 0) < 0 && errno == EINTR {}
        }
        if let restored = Int32(String(readText(pidFile).filter(\.isNumber))), restored > 0 {
            kill(restored, SIGKILL)
        }
        _ = try? ProcessRunner.run(["/bin/rm", "-rf", image])
    }
    return measuring(errors: errors) { measurement in
        _ = try ProcessRunner.run(["/bin/mkdir", "-p", image])
        native = try ProcessRunner.spawn([workload, String(size)], stdout: output, stderr: "/dev/null")
        try waitForText("ready", in: output, timeout: 120)
        let startSave = now()
        try ProcessRunner.check([criu, "dump", "-t", String(native), "-D", image, "--shell-job"], stderr: errors)
        measurement.checkpoint = now() - startSave
        var status: Int32 = 0
        while waitpid(native, &status, 0) < 0 && errno == EINTR {}
        native = 0
        measurement.imageBytes = directorySize(image)
        let dumped = fileSize(output)
        let startRestore = now()
        try ProcessRunner.check([criu, "restore", "-D", image, "--shell-job", "--restore-detached",
                                 "--pidfile", pidFile], stderr: errors)
        let deadline = now() + 120
        while fileSize(output) <= dumped {
            guard now() < deadline else { throw CheckpointBenchError("the restored process never printed") }
            usleep(1000)
        }
        measurement.restore = now() - startRestore
    }
}

/// Runs `body`; a failure becomes the measurement's failure, described by
/// the first error line the tool wrote to `errors` (else by the failure itself).
private func measuring(errors: String? = nil,
                       _ body: (inout CheckpointMeasurement) throws -> Void) -> CheckpointMeasurement {
    var measurement = CheckpointMeasurement()
    do {
        try body(&measurement)
    } catch {
        measurement.failure = errors.flatMap(firstErrorLine) ?? "\(error)"
    }
    return measurement
}

/// The first line of a tool's error output, skipping CRIU's "exited, status"
/// notes about its helpers, which come before the line that says why.
private func firstErrorLine(_ path: String) -> String? {
    let lines = readText(path).split(separator: "\n").map { String($0.drop(while: \.isWhitespace)) }
        .filter { !$0.isEmpty }
    return lines.first { !$0.hasSuffix("exited, status=1") } ?? lines.first
}

/// The path of `name` in this executable's directory.
private func siblingExecutable(_ name: String) -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard count > 0 else { return name }
    let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let slash = path.lastIndex(of: "/") else { return name }
    return String(path[...slash]) + name
}

private func waitForText(_ text: String, in path: String, timeout: Double) throws {
    let deadline = now() + timeout
    while !(readText(path).contains(text)) {
        guard now() < deadline else { throw CheckpointBenchError("\(path) never showed \"\(text)\"") }
        usleep(1000)
    }
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

private func fileSize(_ path: String) -> UInt64 {
    var info = stat()
    return stat(path, &info) == 0 ? UInt64(info.st_size) : 0
}

/// The bytes of the regular files under `path` (each runtime lays its image out differently).
private func directorySize(_ path: String) -> UInt64 {
    guard let stream = opendir(path) else { return 0 }
    defer { closedir(stream) }
    var total: UInt64 = 0
    while let entry = readdir(stream) {
        let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
            pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        guard name != ".", name != ".." else { continue }
        var info = stat()
        guard lstat(path + "/" + name, &info) == 0 else { continue }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: total += directorySize(path + "/" + name)
        case S_IFREG: total += UInt64(info.st_size)
        default: break
        }
    }
    return total
}

/// Runs commands with posix_spawn (a detached `runsc` leaves a sandbox
/// holding its stdout, so only the child's own exit is waited for).
enum ProcessRunner {
    static func check(_ arguments: [String], stdout: String = "/dev/null", stderr: String? = nil) throws {
        let status = try run(arguments, stdout: stdout, stderr: stderr)
        guard status == 0 else {
            throw CheckpointBenchError("\(arguments.joined(separator: " ")) exited with \(status)")
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
        guard result == 0 else { throw CheckpointBenchError("cannot run \(arguments[0]): \(result)") }
        return pid
    }
}

struct CheckpointBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

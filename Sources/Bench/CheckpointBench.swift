#if canImport(Glibc)
import Glibc
#endif

extension BenchSection {
    /// `runsc checkpoint` and `runsc restore` of a program with touched
    /// memory, per size and compression: the time from the command to a
    /// complete image, from `restore` to the program's next line, and the
    /// image's size. Runs the `runsc` binary beside this one (build both in
    /// release mode) on fixtures/bin/ckpt_touch.
    static let checkpoint = BenchSection(
        name: "checkpoint",
        summary: "runsc checkpoint / restore time and image size per touched memory and compression",
        options: ["--sizes LIST         MiB of touched memory (default 64,256,1024)",
                  "--compressions LIST  none,lz4,zstd (default all)",
                  "--runsc PATH         the runsc binary (default: beside runsc-bench)",
                  "--workload PATH      the static workload (default fixtures/bin/ckpt_touch)"],
        run: runCheckpointBench)
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
    var template = Array("/tmp/runsc-bench-checkpoint-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw CheckpointBenchError("mkdtemp: errno \(errno)") }
    let work = String(cString: created)
    defer { _ = try? ProcessRunner.run(["/bin/rm", "-rf", work]) }

    print("checkpoint: \(runsc), workload \(workload) (1/4 of each page random, the rest a pattern)")
    var table = Table(columns: ["MiB", "compression", "checkpoint s", "restore s", "image MiB", "image %"])
    for size in sizes {
        let bundle = work + "/bundle-\(size)"
        _ = try ProcessRunner.run(["/bin/mkdir", "-p", bundle + "/rootfs/bin"])
        _ = try ProcessRunner.run(["/bin/cp", workload, bundle + "/rootfs/bin/ckpt_touch"])
        try ProcessRunner.check([runsc, "spec", "--bundle", bundle, "--", "/bin/ckpt_touch", String(size)])
        for compression in compressions {
            let root = work + "/state"
            let id = "bench-\(size)-\(compression)"
            let image = work + "/image-\(id)"
            try ProcessRunner.check([runsc, "--root", root, "run", "--detach", "--bundle", bundle, id],
                                    stdout: work + "/\(id).out")
            try waitForText("ready", in: work + "/\(id).out", timeout: 120)
            let startSave = now()
            try ProcessRunner.check([runsc, "--root", root, "checkpoint", "--compression", compression,
                                     "--image-path", image, id])
            let saveTime = now() - startSave
            _ = try ProcessRunner.run([runsc, "--root", root, "delete", "--force", id])
            let imageBytes = directorySize(image)

            let restored = id + "-restored"
            let startRestore = now()
            try ProcessRunner.check([runsc, "--root", root, "restore", "--detach", "--image-path", image,
                                     "--bundle", bundle, restored], stdout: work + "/\(restored).out")
            try waitForText("tick", in: work + "/\(restored).out", timeout: 120)
            let restoreTime = now() - startRestore
            _ = try ProcessRunner.run([runsc, "--root", root, "delete", "--force", restored])
            _ = try ProcessRunner.run(["/bin/rm", "-rf", image])
            table.add([String(size), compression, format(saveTime, decimals: 3), format(restoreTime, decimals: 3),
                       format(Double(imageBytes) / 1_048_576, decimals: 1),
                       format(Double(imageBytes) * 100 / Double(size << 20), decimals: 1)])
        }
    }
    print(table.render())
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

private func readText(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 4096)
    let count = read(fd, &bytes, bytes.count)
    return count > 0 ? String(decoding: bytes[0..<count], as: UTF8.self) : ""
}

private func directorySize(_ path: String) -> UInt64 {
    ["manifest.json", "state.img", "pages.img"].reduce(0) { total, name in
        var info = stat()
        return total + (stat(path + "/" + name, &info) == 0 ? UInt64(info.st_size) : 0)
    }
}

/// Runs commands with posix_spawn (a detached `runsc` leaves a sandbox
/// holding its stdout, so only the child's own exit is waited for).
private enum ProcessRunner {
    static func check(_ arguments: [String], stdout: String = "/dev/null") throws {
        let status = try run(arguments, stdout: stdout)
        guard status == 0 else {
            throw CheckpointBenchError("\(arguments.joined(separator: " ")) exited with \(status)")
        }
    }

    static func run(_ arguments: [String], stdout: String = "/dev/null") throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard result == 0 else { throw CheckpointBenchError("cannot run \(arguments[0]): \(result)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

private struct CheckpointBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import OCI
import Testing

/// One `runsc run` of a bundle whose rootfs holds the C fixtures in /bin.
final class SandboxRun {
    let workspace: Workspace
    let bundle: String
    let debug: Bool
    private(set) var result = RunscProcess.Result(status: -1, stdout: "", stderr: "")

    init(_ args: [String], env: [String] = ["PATH=/usr/local/bin:/usr/bin:/bin"], user: UInt32 = 0,
         files: [String: String] = [:], executable: [String] = [], busybox: Bool = false, debug: Bool = false,
         start: Bool = true, tmpfsAtTmp: Bool = true) throws {
        workspace = try Workspace()
        self.debug = debug
        bundle = try workspace.makeBundle(tmpfsAtTmp: tmpfsAtTmp)
        let rootfs = bundle + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
        for name in Fixtures.programs {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: rootfs + "/bin/" + name)
        }
        try FileManager.default.copyItem(atPath: try Fixtures.staticPIE("hello"), toPath: rootfs + "/bin/hello-pie")
        if busybox { try FileManager.default.copyItem(atPath: Fixtures.busybox, toPath: rootfs + "/bin/busybox") }
        for (path, contents) in files {
            let full = rootfs + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try Data(contents.utf8).write(to: URL(fileURLWithPath: full))
            if executable.contains(path) { chmod(full, 0o755) }
        }
        try Self.setProcess(in: bundle + "/config.json", args: args, env: env, user: user)
        if start { result = try self.start().finish(timeout: 60) }
    }

    /// Makes the spec's rootfs writable and creates `rootfs/<directory>`.
    func makeRootfsWritable(directory: String) throws {
        try Self.makeRootfsWritable(bundle: bundle, directory: directory)
    }

    static func makeRootfsWritable(bundle: String, directory: String) throws {
        try editSpec(bundle + "/config.json") { spec in
            guard var root = spec["root"] as? [String: Any] else { throw SetupError("config.json has no root") }
            root["readonly"] = false
            spec["root"] = root
        }
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs/" + directory,
                                                withIntermediateDirectories: true)
    }

    /// Reads the spec at `configPath`, lets `change` edit it, writes it back.
    static func editSpec(_ configPath: String, _ change: (inout [String: Any]) throws -> Void) throws {
        guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath)))
            as? [String: Any] else { throw SetupError("config.json is not an object") }
        try change(&spec)
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: configPath))
    }

    /// Runs fixture `name` with every capability (as a native root has
    /// them) in the sandbox and natively, expecting the same status and
    /// output and an output that ends with "done". `prepare` changes the
    /// bundle; `nativeArguments` replace `arguments` natively.
    static func expectPrivilegedFixtureMatchesNative(_ name: String, arguments: [String] = [],
                                                      nativeArguments: [String]? = nil,
                                                      prepare: (SandboxRun) throws -> Void = { _ in },
                                                      sourceLocation: SourceLocation = #_sourceLocation) throws {
        let sandbox = try SandboxRun(["/bin/" + name] + arguments, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: sandbox.bundle + "/rootfs/bin/" + name)
        try grantAllCapabilities(bundle: sandbox.bundle)
        try prepare(sandbox)
        let native = try Fixtures.runNatively(name, nativeArguments ?? arguments)
        let result = try sandbox.start().finish(timeout: 60)
        #expect(native.status == 0, "\(native.stderr)", sourceLocation: sourceLocation)
        #expect(result.status == native.status, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout == native.stdout, sourceLocation: sourceLocation)
        #expect(result.stdout.hasSuffix("done\n"), sourceLocation: sourceLocation)
    }

    /// Gives the process every capability in every set but the ambient one,
    /// and lets it gain privileges (no NoNewPrivs), as a native root has.
    static func grantAllCapabilities(bundle: String) throws {
        try editSpec(bundle + "/config.json") { spec in
            guard var process = spec["process"] as? [String: Any] else { throw SetupError("config.json has no process") }
            let all = Spec.Capabilities.names
            process["capabilities"] = ["bounding": all, "effective": all, "permitted": all, "inheritable": [String](),
                                       "ambient": [String]()]
            process["noNewPrivileges"] = false
            spec["process"] = process
        }
    }

    /// Gives the container's processes ADDR_NO_RANDOMIZE through the spec's
    /// `linux.personality` (as `setarch -R`): for tests that need the same
    /// addresses from run to run.
    static func disableLayoutRandomization(bundle: String) throws {
        try editSpec(bundle + "/config.json") { spec in
            var linux = spec["linux"] as? [String: Any] ?? [:]
            linux["personality"] = ["domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]]
            spec["linux"] = linux
        }
    }

    /// Rewrites the spec's process (args, env, user; no terminal).
    static func setProcess(in configPath: String, args: [String], env: [String], user: UInt32) throws {
        try editSpec(configPath) { spec in
            guard var process = spec["process"] as? [String: Any] else { throw SetupError("config.json has no process") }
            process["args"] = args
            process["env"] = env
            process["terminal"] = false
            process["user"] = ["uid": user, "gid": user]
            spec["process"] = process
        }
    }

    /// Starts `runsc run` without waiting; the container's stdin is `stdin` (default /dev/null).
    func start(stdin: FileHandle = .nullDevice) throws -> RunningRunsc {
        var arguments = ["--root", workspace.stateRoot]
        if debug { arguments.append("--debug") }
        let id = "c\(UInt32.random(in: 0...UInt32.max))"
        arguments += ["run", "--bundle", bundle, id]
        return try RunningRunsc(arguments: arguments, scratch: workspace.path,
                                cleanup: ["--root", workspace.stateRoot, "delete", "--force", id], stdin: stdin)
    }
}

/// A `runsc` process in flight, its output going to files.
final class RunningRunsc {
    let process = Process()
    let stdoutPath: String
    let stderrPath: String
    private let stdout: FileHandle
    private let stderr: FileHandle
    /// What removes the container if runsc has to be killed (its sandbox would spin on).
    private let cleanup: [String]

    /// `environment` is added to this process's own.
    init(arguments: [String], scratch: String, cleanup: [String], stdin: FileHandle = .nullDevice,
         environment: [String: String] = [:]) throws {
        self.cleanup = cleanup
        stdoutPath = scratch + "/stdout"
        stderrPath = scratch + "/stderr"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.executableURL = URL(fileURLWithPath: try RunscProcess.binary())
        process.arguments = RunscProcess.inSaveRestoreMode(arguments)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        try process.run()
    }

    /// A test that failed midway must not leave runsc or its sandbox behind.
    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = try? RunscProcess.run(cleanup)
        }
    }

    func output() -> String {
        (try? String(decoding: Data(contentsOf: URL(fileURLWithPath: stdoutPath)), as: UTF8.self)) ?? ""
    }

    func waitForOutput(_ text: String, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !output().contains(text) {
            guard process.isRunning, Date() < deadline else {
                throw SetupError("runsc never printed \(text.debugDescription); stdout: \(output())")
            }
            usleep(20_000)
        }
    }

    /// Waits for runsc to exit (killing it after `timeout` seconds, which fails the test).
    func finish(timeout: Double) throws -> RunscProcess.Result {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            _ = try? RunscProcess.run(cleanup)
            Issue.record("runsc did not exit within \(timeout) s")
        }
        process.waitUntilExit()
        try stdout.close()
        try stderr.close()
        return RunscProcess.Result(
            status: process.terminationStatus,
            stdout: output(),
            stderr: String(decoding: try Data(contentsOf: URL(fileURLWithPath: stderrPath)), as: UTF8.self))
    }
}

struct SetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The C programs under fixtures/, compiled with `gcc -static` (scripts/test
/// does it; a test compiles what is missing or stale itself).
enum Fixtures {
    static let programs = ["hello", "exit_code", "args_env", "brk_growth", "mmap_large", "segfault", "spin",
                           "errno_cases", "mmap_file", "process_info"]
    static let busybox = "/bin/busybox"

    static var directory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures").path
    }

    /// `name`.c built as a static-PIE executable (ET_DYN, loaded at a bias).
    static func staticPIE(_ name: String) throws -> String {
        try binary(name, output: name + "-pie", flags: ["-static-pie"])
    }

    static func binary(_ name: String, output: String? = nil, flags: [String] = ["-static"]) throws -> String {
        let source = directory + "/" + name + ".c"
        let binary = directory + "/bin/" + (output ?? name)
        let manager = FileManager.default
        let sourceDate = (try? manager.attributesOfItem(atPath: source)[.modificationDate] as? Date) ?? .distantPast
        let binaryDate = (try? manager.attributesOfItem(atPath: binary)[.modificationDate] as? Date) ?? nil
        if let binaryDate, binaryDate >= sourceDate { return binary }
        try manager.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
        // Compile to a private name and rename, so parallel tests never see half a binary.
        let temporary = binary + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let result = try run("/usr/bin/gcc", flags + ["-O2", "-Wall", "-Werror", "-o", temporary, source])
        guard result.status == 0 else { throw SetupError("gcc \(name).c failed: \(result.stderr)") }
        guard rename(temporary, binary) == 0 else { throw SetupError("cannot rename \(temporary)") }
        return binary
    }

    static func runNatively(_ name: String, _ arguments: [String] = [], stdin: FileHandle = .nullDevice) throws
        -> RunscProcess.Result {
        try run(try binary(name), arguments, stdin: stdin)
    }

    /// Runs a host program, capturing its output.
    static func run(_ executable: String, _ arguments: [String], in directory: String? = nil,
                    stdin: FileHandle = .nullDevice) throws -> RunscProcess.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("native-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let out = scratch.appendingPathComponent("stdout"), err = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = stdin
        try process.run()
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        // A program killed by a signal reports 128+N, as a shell (and runsc) does.
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus
                                                                    : process.terminationStatus
        return RunscProcess.Result(status: status, stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                                   stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self))
    }
}

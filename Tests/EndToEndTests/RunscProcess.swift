import Foundation
import Testing

/// Runs the built `runsc` binary as a user would, capturing its output.
struct RunscProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The binary under test: `RUNSC_BINARY` (set by scripts/test), else the one next to
    /// this test executable (right for any --scratch-path), else `.build/debug/runsc`.
    static func binary() throws -> String {
        var candidates: [String] = []
        if let path = ProcessInfo.processInfo.environment["RUNSC_BINARY"], !path.isEmpty {
            candidates.append(path)
        }
        if let testExecutable = CommandLine.arguments.first {
            var products = URL(fileURLWithPath: testExecutable).deletingLastPathComponent()
            // On Darwin the tests run inside a .xctest bundle: Contents/MacOS/<name>.
            if products.path.hasSuffix("/Contents/MacOS") {
                products = products.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            }
            candidates.append(products.appendingPathComponent("runsc").path)
        }
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(repository.appendingPathComponent(".build/debug/runsc").path)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw MissingBinary(searched: candidates)
        }
        return found
    }

    struct MissingBinary: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "no runsc binary (build it with `swift build`, or set RUNSC_BINARY); looked at: \(searched.joined(separator: ", "))"
        }
    }

    /// Runs `runsc arguments...` in `directory`, as `Fixtures.run` runs any host program
    /// (output through files, so a chatty process cannot block on a full pipe).
    static func run(_ arguments: [String], in directory: String? = nil) throws -> Result {
        try Fixtures.run(try binary(), inSaveRestoreMode(arguments), in: directory)
    }

    /// scripts/test's second pass sets this to N: every container the tests
    /// start is saved, thrown away and restored every N syscalls.
    static let saveRestoreVariable = "RUNSC_TEST_SAVE_RESTORE_EVERY"

    /// `arguments` with `--debug-save-restore-every N` after the `run`,
    /// `create` or `restore` subcommand when `RUNSC_TEST_SAVE_RESTORE_EVERY`
    /// is set; every way the tests start runsc goes through here.
    static func inSaveRestoreMode(_ arguments: [String]) -> [String] {
        guard let every = ProcessInfo.processInfo.environment[saveRestoreVariable], !every.isEmpty else {
            return arguments
        }
        // The subcommand is the first word that is neither a global option nor its value.
        let valued: Set<String> = ["--root", "--log", "--platform"]
        var index = 0
        while index < arguments.count, arguments[index].hasPrefix("-") {
            index += valued.contains(arguments[index]) ? 2 : 1
        }
        guard index < arguments.count, ["run", "create", "restore"].contains(arguments[index]),
              !arguments.contains("--debug-save-restore-every") else { return arguments }
        var modified = arguments
        modified.insert(contentsOf: ["--debug-save-restore-every", every], at: index + 1)
        return modified
    }
}

/// A scratch directory for one test: a state root and room for bundles.
final class Workspace {
    let path: String
    var stateRoot: String { path + "/state" }

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("runsc-e2e-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// `runsc --root <state> arguments...`, as a container engine calls it.
    func runsc(_ arguments: String..., in directory: String? = nil) throws -> RunscProcess.Result {
        try RunscProcess.run(["--root", stateRoot] + arguments, in: directory ?? path)
    }

    /// A bundle written by `runsc spec` itself, with an empty rootfs.
    /// With `tmpfsAtTmp`, the spec also mounts a tmpfs at /tmp, as engines do for
    /// `--tmpfs /tmp` (the fixtures write there; the default spec's rootfs is read-only).
    func makeBundle(_ name: String = "bundle", command: [String] = [], tmpfsAtTmp: Bool = true) throws -> String {
        let bundle = path + "/" + name
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs", withIntermediateDirectories: true)
        let result = try RunscProcess.run(["spec", "--bundle", bundle] + (command.isEmpty ? [] : ["--"] + command))
        #expect(result.status == 0, "runsc spec failed: \(result.stderr)")
        if tmpfsAtTmp {
            let configPath = bundle + "/config.json"
            guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath)))
                as? [String: Any], var mounts = spec["mounts"] as? [[String: Any]] else {
                throw SetupError("config.json has no mounts")
            }
            mounts.append(["destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777"]])
            spec["mounts"] = mounts
            try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: configPath))
        }
        return bundle
    }

    func read(_ relativePath: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: path + "/" + relativePath)), as: UTF8.self)
    }
}

extension RunscProcess.Result {
    /// True when stderr is exactly one `runsc: ...` line: an error a user can read, not a crash report.
    var isCleanError: Bool {
        status != 0 && stderr.hasPrefix("runsc: ") && stderr.hasSuffix("\n")
            && stderr.dropLast().split(separator: "\n").count == 1
    }
}

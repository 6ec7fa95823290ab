import Foundation
import OCI
import Testing

/// A user's session with detached containers: a workspace with a state root
/// and a bundle whose rootfs holds busybox (with its applet links) and the C
/// fixtures in /bin. Every container still known at the end is force-deleted,
/// so a failing test leaves no sandbox process behind.
final class ContainerSession {
    let workspace: Workspace
    let bundle: String
    static let programs = ["hello", "spin", "sleep_exit", "exit_code", "exec_identity", "ckpt_counter",
                            "timer_pause_loop"]

    init(_ args: [String]) throws {
        workspace = try Workspace()
        bundle = try workspace.makeBundle()
        let bin = bundle + "/rootfs/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for name in Self.programs {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: bin + "/" + name)
        }
        if FileManager.default.isExecutableFile(atPath: Fixtures.busybox) {
            try FileManager.default.copyItem(atPath: Fixtures.busybox, toPath: bin + "/busybox")
            for applet in ["sh", "echo", "cat", "sleep", "true"] {
                try FileManager.default.createSymbolicLink(atPath: bin + "/" + applet, withDestinationPath: "busybox")
            }
        }
        try setProcess(args)
    }

    deinit {
        if let ids = try? runsc("list", "-q").stdout.split(separator: "\n") {
            for id in ids { _ = try? runsc("delete", "--force", String(id)) }
        }
    }

    /// Makes `args` the bundle's process (no terminal).
    func setProcess(_ args: [String]) throws {
        try SandboxRun.setProcess(in: bundle + "/config.json", args: args, env: ["PATH=/bin"], user: 0)
    }

    func runsc(_ arguments: String...) throws -> RunscProcess.Result {
        try RunscProcess.run(["--root", workspace.stateRoot] + arguments, in: workspace.path)
    }

    /// `runsc arguments... >output 2>&1 </dev/null`: the container's stdio is what runsc was given.
    func runsc(_ arguments: [String], output: String) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try RunscProcess.binary())
        process.arguments = RunscProcess.inSaveRestoreMode(["--root", workspace.stateRoot] + arguments)
        process.currentDirectoryURL = URL(fileURLWithPath: workspace.path)
        FileManager.default.createFile(atPath: output, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return process.terminationStatus
    }

    /// What `runsc state` prints, decoded.
    func state(_ id: String) throws -> ContainerState {
        let result = try runsc("state", id)
        guard result.status == 0 else { throw SetupError("runsc state \(id) failed: \(result.stderr)") }
        return try JSONDecoder().decode(ContainerState.self, from: Data(result.stdout.utf8))
    }

    func directoryExists(_ id: String) -> Bool {
        FileManager.default.fileExists(atPath: workspace.stateRoot + "/" + id)
    }

    /// Polls until `file` contains `text`.
    func waitFor(_ text: String, in file: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let contents = (try? String(decoding: Data(contentsOf: URL(fileURLWithPath: file)), as: UTF8.self)) ?? ""
            if contents.contains(text) { return }
            guard Date() < deadline else { throw SetupError("\(file) never held \(text.debugDescription): \(contents)") }
            usleep(20_000)
        }
    }

    /// Polls until host process `pid` is gone (or a zombie).
    static func waitForExit(of pid: Int32, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !isGone(pid) {
            guard Date() < deadline else { return false }
            usleep(20_000)
        }
        return true
    }

    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[close...].dropFirst(2).first == "Z"
    }
}

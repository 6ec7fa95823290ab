import Foundation
import Testing

/// A bundle whose rootfs holds the checkpoint fixtures in /bin, and the
/// `runsc` calls a checkpoint/restore session makes, each container's
/// output going to a file of the workspace.
final class CheckpointSession {
    static let programs = ["ckpt_inotify", "ckpt_counter", "ckpt_block", "ckpt_remap", "ckpt_files", "signal_restart", "signal_checkpoint",
                           "itimer_cases", "ckpt_children", "jobctl_cases", "cpu_timer_cases", "posix_timer_cases", "signalfd_cases",
                           "timerfd_cases", "ckpt_threads", "ckpt_epoll", "seccomp_cases", "pidfd_cases", "ckpt_locks",
                           "ckpt_memfd", "ckpt_unix", "futex_cases", "ckpt_inet", "ckpt_epoll_server", "vdso_cases",
                           "futex_requeue_pi", "aslr_layout", "inet_backlog_full", "ckpt_ipc"]

    let workspace: Workspace
    let bundle: String
    private var containers: [(root: String, id: String)] = []

    init(_ args: [String]) throws {
        workspace = try Workspace()
        bundle = try workspace.makeBundle()
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs/bin", withIntermediateDirectories: true)
        for name in Self.programs {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: bundle + "/rootfs/bin/" + name)
        }
        try SandboxRun.setProcess(in: bundle + "/config.json", args: args,
                                  env: ["PATH=/usr/local/bin:/usr/bin:/bin"], user: 0)
    }

    deinit {
        for (root, id) in containers {
            _ = try? RunscProcess.run(["--root", root, "delete", "--force", id])
        }
    }

    func path(_ name: String) -> String { workspace.path + "/" + name }

    /// Makes the spec's rootfs writable and creates `rootfs/<directory>` for the program's files.
    func makeRootfsWritable(directory: String) throws {
        try SandboxRun.makeRootfsWritable(bundle: bundle, directory: directory)
    }

    /// `runsc --root <state> arguments...`.
    func runsc(_ arguments: String...) throws -> RunscProcess.Result {
        try RunscProcess.run(["--root", workspace.stateRoot] + arguments)
    }

    /// Starts `runsc arguments...` with stdout to `output` (created empty),
    /// stderr to `output.err`, stdin from `stdin`. Spawned directly rather
    /// than with Foundation's Process, which takes a detached command for
    /// running as long as the sandbox it leaves behind holds its descriptors.
    /// With `append`, `output` is opened O_APPEND and kept, as a shell's `>>` does.
    func launch(_ arguments: [String], output: String, stdin: FileHandle? = nil, root: String? = nil,
                append: Bool = false) throws -> Spawned {
        let argv = [try RunscProcess.binary()]
            + RunscProcess.inSaveRestoreMode(["--root", root ?? workspace.stateRoot] + arguments)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC)
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin.fileDescriptor, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, path(output), flags, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, path(output + ".err"), flags, 0o644)
        var pointers: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, argv[0], &actions, nil, pointers, environ)
        guard result == 0 else { throw SetupError("posix_spawn runsc: \(result)") }
        if let id = arguments.last { containers.append((root ?? workspace.stateRoot, id)) }
        return Spawned(pid: pid)
    }

    /// A spawned `runsc`.
    struct Spawned {
        let pid: pid_t

        /// Waits for it; returns its exit status (128+N if killed by signal N).
        func wait() -> Int32 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return Self.exitStatus(status)
        }

        /// Waits at most `timeout` seconds; nil if it is still running.
        func wait(timeout: Double) -> Int32? {
            let deadline = Date().addingTimeInterval(timeout)
            var status: Int32 = 0
            while Date() < deadline {
                if waitpid(pid, &status, WNOHANG) == pid { return Self.exitStatus(status) }
                usleep(20_000)
            }
            return nil
        }

        private static func exitStatus(_ status: Int32) -> Int32 {
            if status & 0x7f == 0 { return (status >> 8) & 0xff }
            return 128 + (status & 0x7f)
        }
    }

    /// `runsc run --detach`: returns once the container runs.
    func runDetached(_ id: String, output: String, stdin: FileHandle? = nil) throws {
        let status = try launch(["run", "--detach", "--bundle", bundle, id], output: output, stdin: stdin).wait()
        #expect(status == 0, "run --detach: \(errors(of: output))")
    }

    /// `runsc restore` in the foreground: waits for the container and returns its status.
    func restore(_ id: String, image: String, output: String, stdin: FileHandle? = nil,
                 root: String? = nil, append: Bool = false) throws -> Int32 {
        try launch(["restore", "--image-path", path(image), "--bundle", bundle, id],
                   output: output, stdin: stdin, root: root, append: append).wait()
    }

    /// `runsc restore --detach`.
    func restoreDetached(_ id: String, image: String, output: String) throws -> RunscProcess.Result {
        let status = try launch(["restore", "--detach", "--image-path", path(image), "--bundle", bundle, id],
                                output: output).wait()
        return RunscProcess.Result(status: status, stdout: read(output), stderr: errors(of: output))
    }

    func checkpoint(_ id: String, image: String, _ options: String...) throws -> RunscProcess.Result {
        try RunscProcess.run(["--root", workspace.stateRoot, "checkpoint", "--image-path", path(image)] + options + [id])
    }

    func read(_ output: String) -> String {
        (try? String(contentsOfFile: path(output), encoding: .utf8)) ?? ""
    }

    /// Runs `program` (a fixture in `programs`), checkpoints it 300 ms after
    /// its first `lines` lines, restores it and returns everything it
    /// printed before and after, with the native run's output to compare.
    static func outputAcrossCheckpoint(_ program: String, afterLines lines: Int = 1) throws
        -> (output: String, native: String) {
        let native = try Fixtures.runNatively(program)
        let session = try CheckpointSession(["/bin/" + program])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(lines, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        let output = (session.lines("before") + session.lines("after")).joined(separator: "\n") + "\n"
        return (output, native.stdout)
    }

    func errors(of output: String) -> String { read(output + ".err") }

    func lines(_ output: String) -> [String] {
        read(output).split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }

    /// Waits until `output` has at least `count` lines.
    func waitForLines(_ count: Int, in output: String, timeout: Double = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while lines(output).count < count {
            guard Date() < deadline else {
                throw SetupError("\(output) has \(lines(output).count) lines after \(timeout) s, expected \(count)")
            }
            usleep(10_000)
        }
    }

    func status(_ id: String) throws -> String {
        let result = try runsc("state", id)
        guard let data = result.stdout.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let status = object["status"] as? String else {
            throw SetupError("state \(id): \(result.stderr)")
        }
        return status
    }

    /// The sandbox process (the container state's `pid`).
    func sandboxPID(_ id: String) throws -> pid_t {
        let result = try runsc("state", id)
        guard let data = result.stdout.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let pid = object["pid"] as? Int, pid > 0 else {
            throw SetupError("state \(id): \(result.stdout) \(result.stderr)")
        }
        return pid_t(pid)
    }

    /// `runsc wait`'s exit status.
    func wait(_ id: String) throws -> Int? {
        let result = try runsc("wait", id)
        guard let data = result.stdout.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["exitStatus"] as? Int
    }
}

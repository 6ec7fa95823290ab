import Foundation
import Testing

/// What a fault in the sandbox process leaves: a line naming it in the log,
/// no core file, and a `runsc run` error that says how the sandbox died.
@Suite struct SandboxCrashTests {
    /// The trap is asked for by `runsc boot`'s debug-only test hook
    /// (RUNSC_TEST_SENTRY_TRAP_MS), with core dumps allowed by the caller's
    /// RLIMIT_CORE, as a user's shell with `ulimit -c unlimited` would.
    @Test func aSentryTrapIsNamedInTheLogAndDumpsNoCore() throws {
        let sandbox = try SandboxRun(["/bin/spin"], start: false)
        let log = sandbox.workspace.path + "/runsc.log"
        let id = "crash\(UInt32.random(in: 0...UInt32.max))"
        let started = Date()
        let result = try Self.withCoreDumpsAllowed {
            try RunningRunsc(arguments: ["--root", sandbox.workspace.stateRoot, "--debug", "--log", log,
                                         "run", "--bundle", sandbox.bundle, id],
                             scratch: sandbox.workspace.path,
                             cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id],
                             environment: ["RUNSC_TEST_SENTRY_TRAP_MS": "300"]).finish(timeout: 60)
        }
        #expect(result.status == 1)
        #expect(result.stderr.contains("was killed by SIGILL"), "\(result.stderr)")
        #expect(!result.stderr.contains("stale state"), "\(result.stderr)")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("Fatal error: RUNSC_TEST_SENTRY_TRAP_MS is set"))
        #expect(text.contains("fatal signal SIGILL"), "\(text.suffix(2000))")
        #expect(text.contains("in thread \""))
        for directory in try Self.coreDirectories(cwd: sandbox.workspace.path) {
            let cores = try FileManager.default.contentsOfDirectory(atPath: directory).filter { name in
                guard name.hasPrefix("core"),
                      let date = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)[.modificationDate] as? Date
                else { return false }
                return date >= started
            }
            #expect(cores.isEmpty, "core files in \(directory): \(cores)")
        }
    }

    /// A fatal signal that is not a fault (SIGABRT from abort(3) or the host)
    /// ends the sandbox with its name in the log, once: as the init of its PID
    /// namespace, the sandbox cannot die of the signal raised again, so it
    /// exits with 128+N, which runsc names.
    @Test func aHostSIGABRTEndsTheSandboxAndIsNamedOnce() throws {
        let sandbox = try SandboxRun(["/bin/spin"], start: false)
        let log = sandbox.workspace.path + "/runsc.log"
        let id = "abort\(UInt32.random(in: 0...UInt32.max))"
        let runsc = try RunningRunsc(arguments: ["--root", sandbox.workspace.stateRoot, "--log", log,
                                                 "run", "--bundle", sandbox.bundle, id],
                                     scratch: sandbox.workspace.path,
                                     cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id])
        try runsc.waitForOutput("spinning", timeout: 30)
        let pid = try #require(Self.children(of: runsc.process.processIdentifier).first)
        kill(pid, SIGABRT)
        let result = try runsc.finish(timeout: 20)
        #expect(result.status == 1)
        #expect(result.stderr.contains("exited with status 134 (SIGABRT"), "\(result.stderr)")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.components(separatedBy: "fatal signal").count == 2, "\(text.suffix(2000))")
        #expect(text.contains("fatal signal SIGABRT"), "\(text.suffix(2000))")
    }

    /// The children of every thread of `pid`.
    static func children(of pid: Int32) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// Raises this process's soft RLIMIT_CORE to its hard limit around `body`
    /// (the sandbox inherits it), so a missing RLIMIT_CORE 0 in the sandbox would show.
    static func withCoreDumpsAllowed<T>(_ body: () throws -> T) throws -> T {
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_CORE.rawValue), &saved)
        var raised = saved
        raised.rlim_cur = saved.rlim_max
        setrlimit(Int32(RLIMIT_CORE.rawValue), &raised)
        defer { setrlimit(Int32(RLIMIT_CORE.rawValue), &saved) }
        return try body()
    }

    /// Where a core would land under kernel.core_pattern: the sandbox's cwd
    /// ("/" once it runs) and the caller's for a relative pattern, the
    /// pattern's directory for an absolute one; none for a pipe.
    static func coreDirectories(cwd: String) throws -> [String] {
        let pattern = (try? String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "core"
        if pattern.hasPrefix("|") { return [] }
        if pattern.hasPrefix("/") { return [(pattern as NSString).deletingLastPathComponent] }
        return ["/", cwd]
    }
}

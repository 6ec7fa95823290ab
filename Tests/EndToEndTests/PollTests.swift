import Foundation
import Testing

/// poll, ppoll, select and pselect6 on the file kinds a container has,
/// compared with native runs, and the programs that needed them: busybox
/// sh's `read` builtin polls its input before reading.
@Suite struct PollTests {
    @Test func pollCasesMatchANativeRun() throws {
        let result = try SyscallFixtureTests.runInSandbox("poll_cases")
        let native = try Fixtures.runNatively("poll_cases")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// stdin is a pipe from the test that gets its line only after a delay:
    /// the poll waits on the host pipe, then reads what came. The pipe is
    /// closed a second after the line, so the poll sees POLLIN alone both
    /// natively and in the sandbox (closing at once raced with the poll's
    /// return: POLLIN|POLLHUP or POLLIN, whichever thread ran first).
    @Test func pollOnStdinWaitsForAHostPipe() throws {
        let binary = try Fixtures.binary("poll_cases")
        let native = try Self.withDelayedInput { stdin in try Fixtures.run(binary, ["stdin"], stdin: stdin) }
        let sandbox = try SandboxRun(["/bin/poll_cases", "stdin"], start: false)
        try FileManager.default.copyItem(atPath: binary, toPath: sandbox.bundle + "/rootfs/bin/poll_cases")
        let result = try Self.runWithLateInput(sandbox, after: "waiting for stdin")
        #expect(native.stdout == "waiting for stdin\nstdin poll: 1 revents=0x1 waited=yes\nstdin read: line from the test\n")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    @Test func busyboxShellReadsALineFromAFile() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "echo abc >/tmp/x; read l </tmp/x; echo \"[$l]\""
        let result = try SandboxRun(["/bin/busybox", "sh", "-c", script], busybox: true).result
        let native = try Fixtures.run(Fixtures.busybox, ["sh", "-c", script.replacingOccurrences(of: "/tmp/x", with: "/tmp/poll-read-\(getpid())")])
        #expect(native.stdout == "[abc]\n")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    @Test func busyboxShellReadsALineFromAPipe() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let script = "read first; read second; echo \"[$first] [$second]\""
        let native = try Self.withDelayedInput { stdin in try Fixtures.run(Fixtures.busybox, ["sh", "-c", script], stdin: stdin) }
        let sandbox = try SandboxRun(["/bin/busybox", "sh", "-c", script], busybox: true, start: false)
        let result = try Self.withDelayedInput { stdin in try sandbox.start(stdin: stdin).finish(timeout: 60) }
        #expect(native.stdout == "[line from the test] []\n")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// How long after its line the test's stdin pipe is closed.
    static let closeDelay: useconds_t = 1_000_000

    /// Runs `sandbox` with a pipe as stdin that gets its line 300 ms after the program has printed
    /// `marker`, then EOF a second later. A delay counted from the start raced with a slow start
    /// on a loaded machine: the line was there before the program's first look at stdin.
    static func runWithLateInput(_ sandbox: SandboxRun, after marker: String) throws -> RunscProcess.Result {
        let input = Pipe()
        defer { try? input.fileHandleForReading.close() }
        let running = try sandbox.start(stdin: input.fileHandleForReading)
        try running.waitForOutput(marker, timeout: 30)
        usleep(300_000)
        input.fileHandleForWriting.write(Data("line from the test\n".utf8))
        usleep(closeDelay)
        try input.fileHandleForWriting.close()
        return try running.finish(timeout: 60)
    }

    /// Runs `body` with a pipe as stdin that receives one line 300 ms later, then EOF.
    static func withDelayedInput(_ body: (FileHandle) throws -> RunscProcess.Result) throws -> RunscProcess.Result {
        let input = Pipe()
        let writer = input.fileHandleForWriting
        let thread = Thread {
            usleep(300_000)
            writer.write(Data("line from the test\n".utf8))
            usleep(closeDelay)
            try? writer.close()
        }
        thread.start()
        defer { try? input.fileHandleForReading.close() }
        return try body(input.fileHandleForReading)
    }
}

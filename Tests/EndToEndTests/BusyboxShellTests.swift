import Foundation
import Testing

/// busybox sh running a script of pipelines, subshells, command
/// substitutions, background jobs with wait, exec and external applets:
/// its output and status equal the host busybox's for the same script.
@Suite struct BusyboxShellTests {
    static let script = """
        echo start
        seq 1 20 | grep 1 | wc -l
        x=$(echo inner | tr a-z A-Z); echo "got $x"
        ( cd /; echo subshell; exit 3 ); echo "subshell status $?"
        echo $( echo nested $(echo deeper) )
        sleep 0.2 & p1=$!
        ( seq 1 5 | sort -r ) > /tmp/bb-out & p2=$!
        wait $p1; echo "bg1 $?"
        wait $p2; echo "bg2 $?"; cat /tmp/bb-out
        false | true; echo "pipe status $?"
        true | false; echo "pipe status $?"
        for i in 1 2 3; do echo "item $i"; done | tail -n 2
        sh -c 'exit 7'; echo "child sh $?"
        sh -c 'kill -9 $$'; echo "killed sh $?"
        echo abc | { read v; echo "read $v"; }
        f() { echo "func $1"; return 4; }; f arg; echo "func status $?"
        (exec echo exec in subshell)
        cat /tmp/bb-out | head -n 2 | md5sum
        seq 1 3000 | sort -rn | head -n 3
        rm /tmp/bb-out
        exec sh -c 'echo final exec; exit 5'
        echo not reached
        """

    @Test func aShellScriptMatchesTheHostsBusybox() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox", "sh", "-c", Self.script], busybox: true, start: false)
        let result = try sandbox.start().finish(timeout: 60)
        // Natively with nothing blocked: the test runner's blocked SIGCHLD would be inherited.
        let native = try Fixtures.runNatively("unblocked_exec", [Fixtures.busybox, "sh", "-c", Self.script])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("final exec\n"))
    }

    /// /dev/stdin (/proc/self/fd/0) opened again when stdin is the host's
    /// pipe: a new description on the same pipe, read after the shell's own
    /// `read` took the first line.
    static let stdinScript = "read first; echo \"first: $first\"; cat /dev/stdin; echo \"cat: $?\"; cat < /proc/self/fd/0; echo \"again: $?\""

    @Test func devStdinOpensTheHostsPipeAgain() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        func input() throws -> FileHandle {
            let pipe = Pipe()
            try pipe.fileHandleForWriting.write(contentsOf: Data("one\ntwo\nthree\n".utf8))
            try pipe.fileHandleForWriting.close()
            return pipe.fileHandleForReading
        }
        let sandbox = try SandboxRun(["/bin/busybox", "sh", "-c", Self.stdinScript], busybox: true, start: false)
        let result = try sandbox.start(stdin: try input()).finish(timeout: 60)
        let native = try Fixtures.runNatively("unblocked_exec", [Fixtures.busybox, "sh", "-c", Self.stdinScript],
                                              stdin: try input())
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.contains("two\nthree\ncat: 0\n"))
    }

    /// A shell's `trap` for a signal `runsc kill` sends while the shell waits
    /// on a foreground command: the trap runs once that command is done.
    static let trapScript = "trap 'echo got USR1; exit 4' USR1; echo ready; while :; do sleep 0.05; done"

    @Test func aTrapRunsForASignalSentByRunscKill() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let session = try ContainerSession(["/bin/sh", "-c", Self.trapScript])
        let output = session.workspace.path + "/trap.out"
        #expect(try session.runsc(["run", "--detach", "--bundle", session.bundle, "trap1"], output: output) == 0)
        try session.waitFor("ready", in: output)
        #expect(try session.runsc("kill", "trap1", "USR1").status == 0)
        let waited = try session.runsc("wait", "trap1")
        #expect(waited.stdout.contains("\"exitStatus\":4"), "\(waited.stdout) \(waited.stderr)")
        let native = try JobControlTests.runNatively([Fixtures.busybox, "sh", "-c", Self.trapScript],
                                                     program: try Fixtures.binary("unblocked_exec"),
                                                     steps: [(mark: "ready", signals: [SIGUSR1])])
        #expect(native.status == 4)
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: output)), as: UTF8.self) == native.stdout)
        #expect(native.stdout == "ready\ngot USR1\n")
    }
}

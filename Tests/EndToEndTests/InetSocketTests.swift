import Foundation
import Testing

/// AF_INET and AF_INET6 sockets on the sandbox's loopback network compared
/// with native runs on the host's loopback.
@Suite struct InetSocketTests {
    /// inet_cases: TCP and UDP semantics (names, refusals, resets,
    /// readiness, options, dual stack). inet_backlog_full: non-blocking
    /// connects to a listener whose backlog is full (EINPROGRESS, completed
    /// once accept makes room, refused when the listener closes; a unix
    /// stream socket's is EAGAIN). That fixture prints nothing that depends
    /// on when Linux sends its SYNs again: the sandbox, without packets,
    /// completes a waiting connect at the accept that makes room, in the
    /// order the connects came, where Linux's takes a second or more.
    @Test(arguments: ["inet_cases", "inet_backlog_full"])
    func fixtureMatchesANativeRun(_ name: String) throws {
        let sandbox = try SandboxRun(["/bin/" + name], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary(name),
                                         toPath: sandbox.bundle + "/rootfs/bin/" + name)
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively(name)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
    }

    /// Checkpointed while two non-blocking connects wait for room in a full
    /// backlog: after the restore, accepts complete them as in the straight run.
    @Test func connectsWaitingForAFullBacklogSurviveACheckpoint() throws {
        let native = try Fixtures.runNatively("inet_backlog_full", ["checkpoint"])
        #expect(native.stdout.hasSuffix("done\n"))
        let session = try CheckpointSession(["/bin/inet_backlog_full", "checkpoint"])
        try session.runDetached("b1", output: "before")
        try SignalTests.waitFor("armed", in: session, output: "before")
        #expect(try session.checkpoint("b1", image: "image").status == 0)
        #expect(try session.restoreDetached("b2", image: "image", output: "after").status == 0)
        #expect(try session.wait("b2") == 0)
        // The text, not its lines: the checkpoint may come between two writes of one line.
        #expect(session.read("before") + session.read("after") == native.stdout, "\(session.errors(of: "after"))")
    }

    /// Addresses off the loopback network: the sandbox has no other
    /// network, like a native run in an empty network namespace with lo up.
    @Test func offLoopbackAddressesAreUnreachable() throws {
        let sandbox = try SandboxRun(["/bin/inet_unreachable"], start: false)
        let binary = try Fixtures.binary("inet_unreachable")
        try FileManager.default.copyItem(atPath: binary, toPath: sandbox.bundle + "/rootfs/bin/inet_unreachable")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.run("/usr/bin/unshare", ["-n", "/usr/bin/sh", "-c", "ip link set lo up && exec \(binary)"])
        try #require(native.status == 0, "no empty network namespace natively: \(native.stderr)")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
    }

    /// Checkpointed while a TCP connection holds 150,000 unread bytes each
    /// way, a connection waits unaccepted with bytes sent and a datagram
    /// waits with its sender's address; after restore 1,150,000 bytes arrive
    /// each way with their checksums, the port is still held and the
    /// listener still accepts: as in a native run.
    @Test func tcpMidTransferSurvivesACheckpoint() throws {
        let native = try Fixtures.runNatively("ckpt_inet")
        let session = try CheckpointSession(["/bin/ckpt_inet"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        usleep(300_000)
        #expect(try session.checkpoint("c1", image: "image").status == 0)
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        let lines = session.lines("before") + session.lines("after")
        #expect(native.stdout.hasSuffix("done\n"))
        #expect(lines.joined(separator: "\n") + "\n" == native.stdout)
    }

    /// python3's http.server (dual-stack on ::) started in the background
    /// and fetched by urllib over 127.0.0.1 and ::1 in the same container,
    /// then killed (SIGKILL: a native run inherits the test runner's mask,
    /// which blocks SIGTERM): the output of a native run.
    @Test func python3HttpServerAnswersUrllib() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 is not installed")
        let script = #"""
d=$(mktemp -d) && echo 'hello from the sandbox' > "$d/index.txt"
/usr/bin/python3 -m http.server 8765 --bind :: --directory "$d" >/dev/null 2>&1 &
server=$!
/usr/bin/python3 -c "
import socket, time, urllib.request, urllib.error
for _ in range(400):
    try:
        socket.create_connection(('127.0.0.1', 8765)).close()
        break
    except OSError:
        time.sleep(0.05)
for url in ['http://127.0.0.1:8765/index.txt', 'http://[::1]:8765/index.txt', 'http://127.0.0.1:8765/missing']:
    try:
        with urllib.request.urlopen(url) as r:
            print(url, r.status, r.headers['Content-Length'], r.read().decode(), end='')
    except urllib.error.HTTPError as e:
        print(url, e.code)
"
kill -9 $server
wait $server
rm -r "$d"
echo done
"""#
        let result = try DynamicProgramTests.runWithHostSystem(["/usr/bin/sh", "-c", script])
        let native = try Fixtures.run("/usr/bin/sh", ["-c", script])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
        #expect(native.stdout.hasSuffix("404\ndone\n"))
    }

    /// Debian's redis-server on 127.0.0.1 in the sandbox, redis-cli
    /// piping 10,000 SETs over one connection, then DBSIZE, GET and MGET
    /// from new connections: the output of a native run.
    @Test func redisServerTakesTenThousandKeys() throws {
        for program in ["/usr/bin/redis-server", "/usr/bin/redis-cli"] {
            try #require(FileManager.default.isExecutableFile(atPath: program), "\(program) is not installed")
        }
        let script = Self.redisPipeScript(port: 6391)
        let result = try DynamicProgramTests.runWithHostSystem(["/usr/bin/sh", "-c", script])
        let native = try Fixtures.run("/usr/bin/sh", ["-c", script])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
        #expect(native.stdout.contains("replies: 10000\n10000\nvalue4242\n"))
    }

    /// A shell script that starts redis-server on 127.0.0.1:`port`, writes 10,000 keys with
    /// `redis-cli --pipe`, reads some back and stops the server.
    static func redisPipeScript(port: Int) -> String {
        #"""
d=$(mktemp -d)
/usr/bin/redis-server --port \#(port) --bind 127.0.0.1 --save '' --appendonly no --dir "$d" >/dev/null 2>&1 &
server=$!
for i in $(seq 400); do /usr/bin/redis-cli -p \#(port) ping >/dev/null 2>&1 && break; sleep 0.05; done
seq 1 10000 | awk '{print "SET key" $1 " value" $1}' | /usr/bin/redis-cli -p \#(port) --pipe
/usr/bin/redis-cli -p \#(port) dbsize
/usr/bin/redis-cli -p \#(port) get key4242
/usr/bin/redis-cli -p \#(port) mget key1 key10000 missing
kill -9 $server
wait $server
rm -r "$d"
echo done
"""#
    }

    /// redis-server holding 10,000 keys with a python3 client's connection
    /// open mid-session, checkpointed and restored: the same connection
    /// continues, every key is there and a new one goes in, as natively.
    @Test func redisWithAnOpenClientConnectionSurvivesACheckpoint() throws {
        for program in ["/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/bin/python3"] {
            try #require(FileManager.default.isExecutableFile(atPath: program), "\(program) is not installed")
        }
        let script = #"""
d=$(mktemp -d)
/usr/bin/redis-server --port 6392 --bind 127.0.0.1 --save '' --appendonly no --dir "$d" >/dev/null 2>&1 &
server=$!
for i in $(seq 400); do /usr/bin/redis-cli -p 6392 ping >/dev/null 2>&1 && break; sleep 0.05; done
seq 1 10000 | awk '{print "SET key" $1 " value" $1}' | /usr/bin/redis-cli -p 6392 --pipe >/dev/null
/usr/bin/python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', 6392))
def ask(command):
    s.sendall(command)
    return s.recv(100).decode().replace('\r\n', ' ').strip()
print('dbsize before', ask(b'DBSIZE\r\n'), flush=True)
time.sleep(3)
print('dbsize after', ask(b'DBSIZE\r\n'))
print('get', ask(b'GET key777\r\n'))
print('set', ask(b'SET fresh 1\r\n'))
"
/usr/bin/redis-cli -p 6392 dbsize
kill -9 $server
wait $server
rm -r "$d"
echo done
"""#
        let native = try Fixtures.run("/usr/bin/sh", ["-c", script])
        let session = try CheckpointSession(["/usr/bin/sh", "-c", script])
        let mounts = DynamicProgramTests.hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }
            .map { ($0, $0, ["ro"]) }
        try BindMountTests.addBindMounts(mounts, to: session.bundle)
        try session.runDetached("c1", output: "before")
        try session.waitForLines(1, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(try session.restore("c2", image: "image", output: "after") == 0, "\(session.errors(of: "after"))")
        #expect(!session.lines("after").isEmpty, "the checkpoint came before the end")
        #expect(native.stdout.hasSuffix("10001\ndone\n"))
        #expect((session.lines("before") + session.lines("after")).joined(separator: "\n") + "\n" == native.stdout)
    }
}

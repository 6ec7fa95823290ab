import Foundation
import Testing

/// Unix domain sockets compared with native runs: socketpair, stream,
/// datagram and seqpacket semantics, names on tmpfs, on a host bind mount
/// and abstract, SCM_RIGHTS and SCM_CREDENTIALS, options, readiness.
@Suite struct UnixSocketTests {
    /// Path names under /tmp (a tmpfs in the sandbox) and under a
    /// read-write bind mount of a host directory, where the socket inode
    /// exists only in the sandbox: the name the fixture leaves there is
    /// not in the host directory.
    @Test(arguments: [false, true])
    func unixCasesMatchANativeRun(onHostMount: Bool) throws {
        let sandbox = try SandboxRun(["/bin/unix_cases"] + (onHostMount ? ["/mnt/shared", "keep"] : ["/tmp"]),
                                     start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("unix_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/unix_cases")
        let shared = sandbox.workspace.path + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        if onHostMount {
            try FileManager.default.createDirectory(atPath: sandbox.bundle + "/rootfs/mnt/shared",
                                                    withIntermediateDirectories: true)
            try BindMountTests.addBindMounts([("/mnt/shared", shared, ["rw"])], to: sandbox.bundle)
        }
        try Self.allowOpenFiles(20_000, in: sandbox.bundle)
        let result = try sandbox.start().finish(timeout: 60)
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared).isEmpty)
        let native = try Fixtures.runNatively("unix_cases", onHostMount ? [shared, "keep"] : ["/tmp"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(result.stdout.hasSuffix("done\n"))
    }

    /// Raises the sandbox's RLIMIT_NOFILE hard limit to the one the native
    /// run has: the fixture's chain keeps 10,000 files in flight, which a
    /// root without CAP_SYS_RESOURCE may only up to its limit.
    static func allowOpenFiles(_ hard: Int, in bundle: String) throws {
        let path = bundle + "/config.json"
        guard var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
            as? [String: Any], var process = spec["process"] as? [String: Any] else {
            throw SetupError("config.json has no process")
        }
        process["rlimits"] = [["type": "RLIMIT_NOFILE", "hard": hard, "soft": 1024]]
        spec["process"] = process
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
    }

    /// As an unprivileged user (no CAP_SYS_RESOURCE), files in flight past
    /// RLIMIT_NOFILE are ETOOMANYREFS, and a received one makes room again.
    @Test func filesInFlightAreLimitedAsANativeRun() throws {
        let sandbox = try SandboxRun(["/bin/unix_inflight"], user: 65534, start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("unix_inflight"),
                                         toPath: sandbox.bundle + "/rootfs/bin/unix_inflight")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                           try Fixtures.binary("unix_inflight")])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        #expect(native.stdout.hasSuffix("done\n"))
    }

    /// Checkpointed while a stream pair holds bytes both ways and a pipe in
    /// flight (SCM_RIGHTS), a datagram waits with its sender's address, a
    /// connection waits on a path listener with bytes sent, and a child is
    /// blocked in recv; after restore everything arrives as in a native run.
    @Test func socketsWithBytesAndFilesInFlightSurviveACheckpoint() throws {
        let (output, native) = try CheckpointSession.outputAcrossCheckpoint("ckpt_unix")
        #expect(native.hasSuffix("done\n"))
        #expect(output == native)
    }

    /// Debian's socat in one container: a one-shot server on a path name
    /// writing 100,000 lines to a file, a forking server on an abstract name
    /// running `tr` per connection, and a forking server on a path name
    /// echoing through `cat` to six concurrent clients sending up to
    /// 1.5 MB each, and a datagram server taking one datagram: the
    /// checksums and output of a native run.
    @Test func socatPipelinesOverUnixSockets() throws {
        let script = #"""
            mkdir -p "$W" && cd "$W" || exit 1
            until_socket() { for i in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1"; return 1; }
            socat -u UNIX-LISTEN:"$W/one" CREATE:"$W/got" &
            server=$!
            until_socket "$W/one"
            seq 1 100000 | socat -u - UNIX-CONNECT:"$W/one"
            wait $server; echo "one-shot server: $?"
            cksum < got; seq 1 100000 | cksum
            name=runsc-socat-$$-$RANDOM
            socat -t 30 ABSTRACT-LISTEN:$name,fork EXEC:'tr a-z A-Z' &
            server=$!
            for i in $(seq 600); do socat -u /dev/null ABSTRACT-CONNECT:$name 2>/dev/null && break; sleep 0.05; done
            echo 'hello abstract name' | socat -t 30 - ABSTRACT-CONNECT:$name
            kill -9 $server; wait $server 2>/dev/null
            socat -t 30 UNIX-LISTEN:"$W/many",fork EXEC:cat &
            server=$!
            until_socket "$W/many"
            clients=()
            for i in 1 2 3 4 5 6; do
              seq $i $((i * 40000)) | socat -t 30 - UNIX-CONNECT:"$W/many" > echoed$i &
              clients+=($!)
            done
            wait "${clients[@]}"
            for i in 1 2 3 4 5 6; do echo "client $i: $(cksum < echoed$i) $(seq $i $((i * 40000)) | cksum)"; done
            printf 'line %s\n' a b c | socat -t 30 - UNIX-CONNECT:"$W/many"
            kill -9 $server; wait $server 2>/dev/null
            socat -u UNIX-RECVFROM:"$W/datagrams",unlink-early,mode=600 CREATE:"$W/datagram" &
            server=$!
            until_socket "$W/datagrams"
            stat -c '%A %F' "$W/datagrams"
            echo 'one datagram' | socat -u - UNIX-SENDTO:"$W/datagrams"
            wait $server; echo "datagram server: $? $(cat datagram)"
            ls
            echo done
            """#
        try DebianScriptTests.expectSameAsNative(script, requires: ["/usr/bin/socat"])
    }
}

import Foundation
import Testing

/// pthreads: each application thread a stub thread driven by its own Sentry
/// thread; thread_cases (static, and dynamic through ld.so and the host's
/// libc) against a native run.
@Suite struct ThreadTests {
    /// thread_cases or dynamic_thread_cases with `arguments`, in a sandbox
    /// with the host's system directories (the dynamic one needs them).
    static func run(_ fixture: String, _ arguments: [String] = []) throws -> RunscProcess.Result {
        try DynamicProgramTests.runWithHostSystem(["/bin/" + fixture] + arguments, copying: fixture)
    }

    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func pthreadsMatchANativeRun(_ fixture: String) throws {
        let result = try Self.run(fixture)
        let native = try Fixtures.runNatively(fixture)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// exit() in a second thread ends the process (exit_group) while main
    /// waits in pthread_join: the status is the thread's.
    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func exitFromASecondThreadEndsTheProcess(_ fixture: String) throws {
        let result = try Self.run(fixture, ["exit-group"])
        let native = try Fixtures.runNatively(fixture, ["exit-group"])
        #expect(native.status == 7)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// fork while four threads write the same pages: their copy-on-write
    /// faults on one page race, and each retries what another resolved.
    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func threadsWritingPagesAForkSharedMatchANativeRun(_ fixture: String) throws {
        let result = try Self.run(fixture, ["fork-writers"])
        let native = try Fixtures.runNatively(fixture, ["fork-writers"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// Threads in forked children, one child after another: each child's
    /// stub (a spare, or the last child's recycled) makes its stub threads
    /// after the Sentry's host filter is in place, which they inherit.
    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func threadsInForkedChildrenMatchANativeRun(_ fixture: String) throws {
        let result = try Self.run(fixture, ["child-threads"])
        let native = try Fixtures.runNatively(fixture, ["child-threads"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// execve from a second thread: the other threads end, the process keeps
    /// its PID and the exec'ing thread takes the leader's TID.
    @Test(arguments: ["thread_cases", "dynamic_thread_cases"])
    func execFromASecondThreadKeepsThePID(_ fixture: String) throws {
        let result = try Self.run(fixture, ["exec"])
        let native = try Fixtures.runNatively(fixture, ["exec"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
    }

    /// Checkpointed with three threads in pthread_cond_wait and one in a
    /// FUTEX_WAIT_BITSET with an absolute deadline: the restored process's
    /// threads come back as stub threads, the futex wait times out at its
    /// deadline on the virtual clock, and the output equals a straight run.
    @Test func threadsBlockedOnACondvarAndAFutexTimeoutSurviveARestore() throws {
        let native = try Fixtures.runNatively("ckpt_threads")
        let expected = native.stdout.split(separator: "\n").map(String.init)
        let session = try CheckpointSession(["/bin/ckpt_threads"])
        try session.runDetached("t1", output: "before")
        try session.waitForLines(5, in: "before")
        let saved = try session.checkpoint("t1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("t2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
        #expect(expected.suffix(2) == ["futex wait: Connection timed out, at its deadline: yes", "condvar waiters joined: 600"])
    }

    /// A process whose main thread called pthread_exit (its leader gone,
    /// a second thread running) is checkpointed and restored.
    @Test func aProcessWhoseLeaderExitedSurvivesARestore() throws {
        let native = try Fixtures.runNatively("ckpt_threads", ["leader-exits"])
        let expected = native.stdout.split(separator: "\n").map(String.init)
        let session = try CheckpointSession(["/bin/ckpt_threads", "leader-exits"])
        try session.runDetached("l1", output: "before")
        try session.waitForLines(5, in: "before")
        let saved = try session.checkpoint("l1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("l2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        #expect(session.lines("before") + session.lines("after") == expected)
        #expect(expected.count == 20)
    }

    /// python3's threading: 8 threads hashing under a lock, against a native run.
    @Test func pythonThreadingMatchesANativeRun() throws {
        let python = "/usr/bin/python3"
        try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) is not installed")
        let script = """
            import threading, hashlib
            lock = threading.Lock()
            results = {}
            def work(n):
                h = hashlib.sha256(str(n).encode())
                for _ in range(2000):
                    h = hashlib.sha256(h.digest())
                with lock:
                    results[n] = h.hexdigest()[:16]
            threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
            for t in threads: t.start()
            for t in threads: t.join()
            for n in sorted(results): print(n, results[n])
            print("threads alive after join:", threading.active_count())
            """
        let result = try DynamicProgramTests.runWithHostSystem([python, "-c", script])
        let native = try Fixtures.run(python, ["-c", script])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout, "\(result.stderr)")
        #expect(native.stdout.split(separator: "\n").count == 9)
    }
}

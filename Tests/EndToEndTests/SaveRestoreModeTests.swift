import Foundation
import Testing

/// `runsc run --debug-save-restore-every N`: a program whose kernel is saved,
/// thrown away and restored every few syscalls prints what it prints
/// natively, and the sandbox reports how many cycles it went through.
@Suite struct SaveRestoreModeTests {
    @Test func aProgramCycledEveryTwoSyscallsMatchesANativeRunAndReportsItsCycles() throws {
        _ = try Self.runCycled("errno_cases", every: 2, timeout: 120)
    }

    /// Loopback TCP in a kernel restored in the process of the one it
    /// replaced: the restored listener takes the connects and a closed
    /// one's port is free again (they used to find the discarded kernel's
    /// sockets and hang). A cycle every 3 syscalls, whatever the suite's setting.
    @Test func loopbackConnectionsCycledEveryThreeSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("inet_backlog_full", every: 3, timeout: 60, copyingFixture: true)
        #expect(native.hasSuffix("done\n"))
    }

    /// Files in flight in unix sockets across restores into new kernels in
    /// one process: a restored kernel's queued SCM_RIGHTS messages were
    /// charged again on top of the discarded kernel's charges, so the chain
    /// of 10,000 passed sockets met ETOOMANYREFS early.
    @Test func unixSocketCasesCycledEveryThousandSyscallsMatchANativeRun() throws {
        _ = try Self.runCycled("unix_cases", arguments: ["/tmp"], every: 1000, timeout: 300,
                                             copyingFixture: true, openFiles: 20_000)
    }

    /// Blocking receives that a cycle's pause interrupts go on after the
    /// restore as if nothing had come (a pause is no signal): MSG_WAITALL
    /// on unix and loopback TCP streams gathers all it asked for, where it
    /// returned the bytes taken before the pause, an SO_RCVTIMEO receive
    /// waits out the rest of its timeout, where it said EINTR, and a send
    /// larger than the socket's buffer (a write larger than a pipe's)
    /// sends it all, where it returned the bytes queued before the pause.
    @Test func socketWaitsCycledEveryThreeSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("socket_waits", every: 3, timeout: 60, copyingFixture: true)
        #expect(native.hasSuffix("done\n"))
    }

    /// A FUTEX_LOCK_PI waiter that a pause takes off the queue is handed
    /// the lock, as Linux's waiter would be, by an unlock (FUTEX_WAITERS
    /// set) or its owner's exit (FUTEX_OWNER_DIED too) that came meanwhile:
    /// it took a free word bare, or found its dead owner's TID (ESRCH).
    @Test func piLocksCycledEveryFiveSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("futex_cases", arguments: ["pi-raw"], every: 5, timeout: 60,
                                                  copyingFixture: true)
        #expect(native.contains("blocked, then handed over: 0") && native.contains("blocked, owner exits: 0"))
    }

    /// FUTEX_WAIT_REQUEUE_PI waiters that a pause interrupts stay on their
    /// queue through the save and restore, so a FUTEX_CMP_REQUEUE_PI (or a
    /// wake) that comes before their re-entry finds them, as Linux's would:
    /// it found nobody and answered 0, or the wait went on after the wake.
    @Test(arguments: ["errors", "free", "held", "refusals", "timeout", "owner-dies"])
    func requeuePIWaitersCycledEveryFiveSyscallsMatchANativeRun(_ name: String) throws {
        _ = try Self.runCycled("futex_requeue_pi", arguments: [name], every: 5, timeout: 60, copyingFixture: true)
    }

    /// Plain futex waits, futex_waitv, a PI mutex and a robust one cycled
    /// every 5 syscalls: a waiter the pause interrupts keeps its place, so
    /// a FUTEX_WAKE that comes before its re-entry finds it and its wait
    /// returns 0, where the wake found nobody and the re-entered wait saw
    /// the word changed (EAGAIN); and a FUTEX_WAIT's relative timeout runs
    /// on to the deadline it had, where each pause started it over. And
    /// pthread_cancel of threads blocked in read, nanosleep and
    /// pthread_cond_wait: a SIGCANCEL sent while the target was parked for
    /// a cycle is taken when the restored thread starts, where it went back
    /// into its read with the signal pending and the join waited for ever.
    @Test(arguments: ["wakes", "wait-timeout", "waitv", "pi-mutex", "robust-thread", "thread-signals", "cancel"])
    func futexCasesCycledEveryFiveSyscallsMatchANativeRun(_ name: String) throws {
        _ = try Self.runCycled("futex_cases", arguments: [name], every: 5, timeout: 60, copyingFixture: true)
    }

    /// Changed user and group IDs, filesystem IDs, capabilities and
    /// securebits come back from each cycle as they were saved.
    @Test func credentialsCycledEverySevenSyscallsMatchANativeRun() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("credentials-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let native = try Self.runCycled("credentials_cases", arguments: ["/data"], nativeArguments: [directory],
                                        every: 7, timeout: 120, copyingFixture: true,
                                        allCapabilities: true) { sandbox in
            try sandbox.makeRootfsWritable(directory: "/data")
        }
        #expect(native.hasSuffix("done\n"))
    }

    /// SysV segments, attached, detached and removed while attached, come
    /// back from each cycle with their bytes, keys and attachments.
    @Test func shmSegmentsCycledEveryFiveSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("shm_cases", every: 5, timeout: 120, copyingFixture: true,
                                        allCapabilities: true)
        #expect(native.hasSuffix("done\n"))
    }

    /// Semaphore sets, their values and SEM_UNDO adjustments come back from
    /// each cycle; a semop the pause interrupted waits on, and fails with
    /// EIDRM if its set was removed meanwhile.
    @Test func semaphoresCycledEveryThreeSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("sem_cases", every: 3, timeout: 120, copyingFixture: true,
                                        allCapabilities: true)
        #expect(native.hasSuffix("done\n"))
    }

    /// Message queues and their messages come back from each cycle; a
    /// blocked sender or receiver waits on.
    @Test func messageQueuesCycledEveryThreeSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("msg_cases", every: 3, timeout: 120, copyingFixture: true,
                                        allCapabilities: true)
        #expect(native.hasSuffix("done\n"))
    }

    /// Nice values, policies, affinity masks and I/O priorities come back from each cycle.
    @Test func schedulingAttributesCycledEveryFourSyscallsMatchANativeRun() throws {
        let native = try Self.runCycled("scheduling_cases", every: 4, timeout: 120, copyingFixture: true,
                                        allCapabilities: true)
        #expect(native.hasSuffix("done\n"))
    }

    /// Runs fixture `name` with `arguments` and a save/restore cycle every
    /// `every` syscalls, expects what a native run prints and its status,
    /// and a tally ("cycles N failed M") of at least one cycle and no
    /// failed one; returns the native output. `openFiles` raises the
    /// container's hard RLIMIT_NOFILE, for a fixture that raises its own to
    /// it. `nativeArguments` replace `arguments` natively; `prepare` changes
    /// the bundle before the run.
    private static func runCycled(_ name: String, arguments: [String] = [], nativeArguments: [String]? = nil,
                                  every: Int, timeout: Double, copyingFixture: Bool = false, openFiles: Int? = nil,
                                  allCapabilities: Bool = false,
                                  prepare: (SandboxRun) throws -> Void = { _ in }) throws -> String {
        let sandbox = try SandboxRun(["/bin/" + name] + arguments, start: false)
        if let openFiles { try UnixSocketTests.allowOpenFiles(openFiles, in: sandbox.bundle) }
        if allCapabilities { try SandboxRun.grantAllCapabilities(bundle: sandbox.bundle) }
        try prepare(sandbox)
        if copyingFixture {
            try FileManager.default.copyItem(atPath: try Fixtures.binary(name), toPath: sandbox.bundle + "/rootfs/bin/" + name)
        }
        let tally = sandbox.workspace.path + "/tally"
        let id = "c\(UInt32.random(in: 0...UInt32.max))"
        let run = try RunningRunsc(
            arguments: ["--root", sandbox.workspace.stateRoot, "run", "--debug-save-restore-every", String(every),
                        "--bundle", sandbox.bundle, id],
            scratch: sandbox.workspace.path, cleanup: ["--root", sandbox.workspace.stateRoot, "delete", "--force", id],
            environment: ["RUNSC_DEBUG_SAVE_RESTORE_TALLY": tally])
        let result = try run.finish(timeout: timeout)
        let native = try Fixtures.runNatively(name, nativeArguments ?? arguments)
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
        let fields = try String(contentsOfFile: tally, encoding: .utf8).split(whereSeparator: \.isWhitespace)
        #expect(fields.count >= 4 && fields[0] == "cycles" && fields[2] == "failed", "tally: \(fields)")
        #expect(fields.count >= 4 && (Int(fields[1]) ?? 0) > 0, "no cycle in \(fields)")
        #expect(fields.count >= 4 && fields[3] == "0", "a cycle failed: \(fields)")
        return native.stdout
    }
}

#if canImport(Glibc)
import Glibc
#endif
import OCI

extension BenchSection {
    /// Issue #10's thread and dynamic-program costs: fixtures/thread_bench.c
    /// natively, in ours and in Debian's gVisor (ptrace platform), in one
    /// run, with the host's /usr, /lib, /lib64 and /etc bind-mounted read-only
    /// for Debian's python3.
    static let dynamic = BenchSection(
        name: "dynamic",
        summary: "python3 -c pass start-up, futex ping-pong between two threads, clock_gettime, 4 CPU-bound threads: ours vs gVisor vs native",
        options: ["--runsc PATH       our runsc (default: beside runsc-bench)",
                  "--gvisor PATH      Debian's gVisor runsc (default /usr/bin/runsc; 'none' to skip)",
                  "--workload PATH    fixtures/bin/thread_bench",
                  "--python PATH      the dynamic program started (default /usr/bin/python3)",
                  "--starts N         python3 starts per run (default 10)",
                  "--pingpongs N      futex round trips per run (default 20000)",
                  "--clock-calls N    clock_gettime calls per run (default 200000)",
                  "--cpu-steps N      millions of steps per thread for the CPU-bound row (default 40)",
                  "--repeats N        runs per cell, best kept (default 3)"],
        run: runDynamicBench)
}

func runDynamicBench(_ options: BenchOptions) throws {
    let runsc = options.string("runsc", default: siblingExecutable("runsc"))
    let gvisor = options.string("gvisor", default: "/usr/bin/runsc")
    let workload = options.string("workload", default: "fixtures/bin/thread_bench")
    let python = options.string("python", default: "/usr/bin/python3")
    let repeats = max(options.int("repeats", default: 3), 1)
    guard access(workload, R_OK) == 0 else {
        print("dynamic: skipped (needs \(workload); build the fixtures first)")
        return
    }
    var template = Array("/tmp/runsc-bench-dynamic-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw BenchError("mkdtemp: errno \(errno)") }
    let work = String(cString: created)
    defer { _ = try? ProcessRunner.run(["/bin/rm", "-rf", work]) }
    let bundle = work + "/bundle"
    _ = try ProcessRunner.run(["/bin/mkdir", "-p", bundle + "/rootfs/bin"])
    _ = try ProcessRunner.run(["/bin/cp", workload, bundle + "/rootfs/bin/thread_bench"])
    let mounts = ["/usr", "/lib", "/lib64", "/etc"].filter { (path: String) in access(path, F_OK) == 0 }.map {
        Spec.Mount(destination: $0, type: "bind", source: $0, options: ["rbind", "ro"])
    }

    var cases = [
        ProcessCase(name: "futex ping-pong round trip", arguments: ["futex-pingpong", String(options.int("pingpongs", default: 20000))],
                    unit: "us", note: "two threads, FUTEX_WAIT/WAKE; gVisor 42.7, native 22 in the issue"),
        ProcessCase(name: "clock_gettime(CLOCK_MONOTONIC)", arguments: ["clock-gettime", String(options.int("clock-calls", default: 200000))],
                    unit: "ns", note: "gVisor 9600, native 23 in the issue; goal under 100"),
        ProcessCase(name: "4 CPU-bound threads, wall", arguments: ["cpu-threads", String(options.int("cpu-steps", default: 40))],
                    unit: "ms", note: "no syscalls in the loops: the platform must not serialise them"),
    ]
    if access(python, X_OK) == 0 {
        cases.insert(ProcessCase(name: "python3 -c pass start-up", arguments: ["spawn", String(options.int("starts", default: 10)),
                                                                               python, "-c", "pass"],
                                 unit: "ms", note: "fork+exec+wait of Debian's dynamic python3"), at: 0)
    } else {
        print("dynamic: \(python) is not installed; no start-up row")
    }
    print("dynamic: \(workload) natively, in \(runsc) and in \(gvisor) (ptrace platform), host /usr /lib /lib64 /etc "
          + "bind-mounted; best of \(repeats) runs per cell; goal: ours at most half of gVisor")
    let table = compareRuntimes(cases, program: "/bin/thread_bench", workload: workload, runsc: runsc, gvisor: gvisor,
                                repeats: repeats, bundle: bundle, work: work, mounts: mounts)
    print(table.render())
}

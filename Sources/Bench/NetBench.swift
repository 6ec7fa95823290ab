#if canImport(Glibc)
import Glibc
#endif

extension BenchSection {
    /// Issue #11's network and multiplexing costs: fixtures/net_bench.c
    /// natively, in ours and in Debian's gVisor (ptrace platform,
    /// `--network=none`, whose empty network namespace has a loopback), in one
    /// run, with the ratios.
    static let net = BenchSection(
        name: "net",
        summary: "loopback TCP throughput and 1-byte ping-pong, unix socket throughput, epoll_wait with 1,000 idle and 10 ready: ours vs gVisor vs native",
        options: ["--runsc PATH       our runsc (default: beside runsc-bench)",
                  "--gvisor PATH      Debian's gVisor runsc (default /usr/bin/runsc; 'none' to skip)",
                  "--workload PATH    fixtures/bin/net_bench",
                  "--tcp-mib N        MiB sent over 127.0.0.1 per run (default 64)",
                  "--pingpongs N      1-byte TCP round trips per run (default 2000)",
                  "--unix-mib N       MiB sent over a unix socketpair per run (default 64)",
                  "--epoll-waits N    epoll_wait calls per run (default 5000)",
                  "--repeats N        runs per cell, best kept (default 3)"],
        run: runNetBench)
}

func runNetBench(_ options: BenchOptions) throws {
    let runsc = options.string("runsc", default: siblingExecutable("runsc"))
    let gvisor = options.string("gvisor", default: "/usr/bin/runsc")
    let workload = options.string("workload", default: "fixtures/bin/net_bench")
    let repeats = max(options.int("repeats", default: 3), 1)
    guard access(workload, R_OK) == 0 else {
        print("net: skipped (needs \(workload); build the fixtures first)")
        return
    }
    var template = Array("/tmp/runsc-bench-net-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw BenchError("mkdtemp: errno \(errno)") }
    let work = String(cString: created)
    defer { _ = try? ProcessRunner.run(["/bin/rm", "-rf", work]) }
    let bundle = work + "/bundle"
    _ = try ProcessRunner.run(["/bin/mkdir", "-p", bundle + "/rootfs/bin"])
    _ = try ProcessRunner.run(["/bin/cp", workload, bundle + "/rootfs/bin/net_bench"])

    let cases = [
        ProcessCase(name: "TCP throughput over 127.0.0.1", arguments: ["tcp-throughput", String(options.int("tcp-mib", default: 64))],
                    unit: "MiB/s", higherIsBetter: true, note: "fork; 64 KiB writes, the parent reads it all; goal: twice gVisor"),
        ProcessCase(name: "TCP 1-byte ping-pong round trip", arguments: ["tcp-pingpong", String(options.int("pingpongs", default: 2000))],
                    unit: "us", note: "two processes, TCP_NODELAY"),
        ProcessCase(name: "unix socket throughput", arguments: ["unix-throughput", String(options.int("unix-mib", default: 64))],
                    unit: "MiB/s", higherIsBetter: true, note: "socketpair(AF_UNIX, SOCK_STREAM) and fork; 64 KiB writes"),
        ProcessCase(name: "epoll_wait, 1,000 idle + 10 ready", arguments: ["epoll-idle", String(options.int("epoll-waits", default: 5000))],
                    unit: "us", note: "both ends of 250 empty pipes and 500 eventfds idle, 10 eventfds ready, timeout 0"),
    ]
    print("net: \(workload) natively, in \(runsc) and in \(gvisor) (ptrace platform, --network=none: its loopback); "
          + "best of \(repeats) runs per cell; goal: ours at most half of gVisor's time, at least twice its throughput")
    let table = compareRuntimes(cases, program: "/bin/net_bench", workload: workload, runsc: runsc, gvisor: gvisor,
                                repeats: repeats, bundle: bundle, work: work)
    print(table.render())
}

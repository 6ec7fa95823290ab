#if canImport(Glibc)
import Glibc
#endif
import OCI

extension BenchSection {
    /// Issue #9's process costs: the same static program
    /// (fixtures/process_bench.c) natively, in ours and in Debian's gVisor
    /// (ptrace platform), in one run, with the ratios.
    static let process = BenchSection(
        name: "process",
        summary: "fork+exit+wait, fork+exec+wait, fork at N MiB resident and the parent's writes after it, signal to self: ours vs gVisor vs native",
        options: ["--runsc PATH       our runsc (default: beside runsc-bench)",
                  "--gvisor PATH      Debian's gVisor runsc (default /usr/bin/runsc; 'none' to skip)",
                  "--workload PATH    fixtures/bin/process_bench",
                  "--hello PATH       the static program fork+exec runs (fixtures/bin/hello)",
                  "--forks N          fork+exit rounds per run (default 300)",
                  "--execs N          fork+exec rounds per run (default 100)",
                  "--mib N            resident MiB for the fork-resident row (default 1024)",
                  "--signals N        signals per run (default 20000)",
                  "--repeats N        runs per cell, best kept (default 3)"],
        run: runProcessBench)
}

/// One row: a program's run and the result line it prints.
struct ProcessCase {
    var name: String
    var arguments: [String]
    /// The name of the program's output line with the result (default: the mode, `arguments[0]`).
    var key: String? = nil
    var unit: String
    /// A rate (MiB/s): the highest of the runs is kept and the goal is twice gVisor's.
    var higherIsBetter = false
    /// gVisor's time on this machine kind as the issue gives it, for the goal column.
    var note: String
}

func runProcessBench(_ options: BenchOptions) throws {
    let runsc = options.string("runsc", default: siblingExecutable("runsc"))
    let gvisor = options.string("gvisor", default: "/usr/bin/runsc")
    let workload = options.string("workload", default: "fixtures/bin/process_bench")
    let hello = options.string("hello", default: "fixtures/bin/hello")
    let repeats = max(options.int("repeats", default: 3), 1)
    guard access(workload, R_OK) == 0, access(hello, R_OK) == 0 else {
        print("process: skipped (needs \(workload) and \(hello); build the fixtures first)")
        return
    }
    var template = Array("/tmp/runsc-bench-process-XXXXXX".utf8CString)
    guard let created = mkdtemp(&template) else { throw BenchError("mkdtemp: errno \(errno)") }
    let work = String(cString: created)
    defer { _ = try? ProcessRunner.run(["/bin/rm", "-rf", work]) }
    let bundle = work + "/bundle"
    _ = try ProcessRunner.run(["/bin/mkdir", "-p", bundle + "/rootfs/bin"])
    _ = try ProcessRunner.run(["/bin/cp", workload, bundle + "/rootfs/bin/process_bench"])
    _ = try ProcessRunner.run(["/bin/cp", hello, bundle + "/rootfs/bin/hello"])

    let mib = max(options.int("mib", default: 1024), 1)
    let cases = [
        ProcessCase(name: "fork+exit+wait", arguments: ["fork-exit", String(options.int("forks", default: 300))],
                    unit: "us", note: "gVisor 1758, native 120 in the issue"),
        ProcessCase(name: "fork+exec+wait", arguments: ["fork-exec", String(options.int("execs", default: 100)), "/bin/hello"],
                    unit: "us", note: "gVisor 6169, native 444 in the issue"),
        ProcessCase(name: "fork at \(mib) MiB", arguments: ["fork-resident", String(mib), "5"],
                    unit: "ms", note: "gVisor 3.8, native 31 at 1 GiB in the issue"),
        ProcessCase(name: "then the parent's write of \(mib) MiB", arguments: ["fork-resident", String(mib), "5"],
                    key: "fork-touch",
                    unit: "ms", note: "one byte per page, the child gone: what the fork leaves the parent to pay"),
        ProcessCase(name: "signal to self", arguments: ["signal", String(options.int("signals", default: 20000))],
                    unit: "us", note: "gVisor 211, native 2.6 in the issue"),
    ]
    print("process: \(workload) natively, in \(runsc) and in \(gvisor) (ptrace platform); best of \(repeats) runs per cell; "
          + "goal: ours at most half of gVisor")
    let table = compareRuntimes(cases, program: "/bin/process_bench", workload: workload, runsc: runsc, gvisor: gvisor,
                                repeats: repeats, bundle: bundle, work: work)
    print(table.render())
}

/// Each case of the program `workload` (at `program` in the bundle's rootfs)
/// natively, in ours and in gVisor (ptrace platform), best of `repeats`, as
/// a table with the ratios and whether ours is at most half of gVisor.
/// `mounts` are added to the bundle's spec (the host's /usr for Debian's programs).
func compareRuntimes(_ cases: [ProcessCase], program: String, workload: String, runsc: String, gvisor: String,
                     repeats: Int, bundle: String, work: String, mounts: [Spec.Mount] = []) -> Table {
    var table = Table(columns: ["measure", "unit", "native", "ours", "gVisor", "ours/gVisor", "ours/native", "goal", "note"])
    for item in cases {
        let native = best(repeats, highest: item.higherIsBetter) { try measureNative(workload, item, bundle: bundle, work: work) }
        let ours = best(repeats, highest: item.higherIsBetter) {
            try measureSandboxed([runsc, "--root", work + "/ours"], item, program: program, bundle: bundle, work: work,
                                 mounts: mounts)
        }
        let theirs = gvisor == "none" || access(gvisor, X_OK) != 0 ? .failure("\(gvisor) is not installed")
            : best(repeats, highest: item.higherIsBetter) {
                try measureSandboxed([gvisor, "--platform=ptrace", "--network=none", "--root", work + "/gvisor"],
                                     item, program: program, bundle: bundle, work: work, mounts: mounts)
            }
        func cell(_ result: Measured) -> String {
            switch result {
            case .value(let value): format(value, decimals: value < 10 ? 2 : 1)
            case .failure: "failed"
            }
        }
        func ratio(_ top: Measured, _ bottom: Measured) -> String {
            guard case .value(let a) = top, case .value(let b) = bottom, b > 0 else { return "-" }
            return format(a / b, decimals: 2)
        }
        var goal = "-"
        if case .value(let a) = ours, case .value(let b) = theirs, b > 0 {
            goal = (item.higherIsBetter ? a >= b * 2 : a <= b / 2) ? "met" : "missed"
        }
        let failures = [("native", native), ("ours", ours), ("gVisor", theirs)].compactMap { name, result -> String? in
            if case .failure(let why) = result { return "\(name): \(why)" }
            return nil
        }
        table.add([item.name, item.unit, cell(native), cell(ours), cell(theirs), ratio(ours, theirs), ratio(ours, native),
                   goal, failures.isEmpty ? item.note : failures.joined(separator: "; ")])
    }
    return table
}

private enum Measured {
    case value(Double)
    case failure(String)
}

/// The lowest of `repeats` measurements (the highest for a rate); the last failure if none worked.
private func best(_ repeats: Int, highest: Bool = false, _ measure: () throws -> Double) -> Measured {
    var kept: Double?
    var failure = ""
    for _ in 0..<repeats {
        do {
            let value = try measure()
            kept = highest ? max(kept ?? value, value) : min(kept ?? value, value)
        } catch {
            failure = "\(error)"
        }
    }
    return kept.map(Measured.value) ?? .failure(failure)
}

/// The program on the host, with the bundle's rootfs as the place the programs in its /bin are found.
private func measureNative(_ workload: String, _ item: ProcessCase, bundle: String, work: String) throws -> Double {
    let arguments = item.arguments.map { $0.hasPrefix("/bin/") ? bundle + "/rootfs" + $0 : $0 }
    let output = work + "/native.out"
    try ProcessRunner.check([workload] + arguments, stdout: output, stderr: work + "/native.err")
    return try parse(readText(output), item)
}

/// The program as a container's init under `runtime` (ours or gVisor, the
/// same bundle, its spec what our `runsc spec` writes, plus `mounts`).
private func measureSandboxed(_ runtime: [String], _ item: ProcessCase, program: String, bundle: String,
                              work: String, mounts: [Spec.Mount]) throws -> Double {
    var spec = Spec.makeDefault(args: [program] + item.arguments)
    spec.mounts += mounts
    try writeFile(bundle + "/config.json", try spec.encodedJSON())
    let output = work + "/sandboxed.out", errors = work + "/sandboxed.err"
    let id = "bench-process-\(getpid())"
    defer { _ = try? ProcessRunner.run(runtime + ["delete", "--force", id]) }
    let status = try ProcessRunner.run(runtime + ["run", "--bundle", bundle, id], stdout: output, stderr: errors)
    guard status == 0 else {
        let why = readText(errors).split(separator: "\n").last.map(String.init) ?? ""
        throw BenchError("exit \(status) \(why)")
    }
    return try parse(readText(output), item)
}

/// "NAME VALUE UNIT" from the program's output.
private func parse(_ output: String, _ item: ProcessCase) throws -> Double {
    for line in output.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if fields.count == 3, fields[0] == item.key ?? item.arguments.first ?? "", fields[2] == item.unit,
           let value = Double(fields[1]) { return value }
    }
    throw BenchError("no result in \(output.debugDescription)")
}

import Foundation
import Testing

/// Address-space layout randomisation: each exec places the stack, the mmap
/// base, a PIE, the interpreter and the heap at random, as Linux x86-64
/// does; personality(ADDR_NO_RANDOMIZE) (`setarch -R`) or the spec's
/// `linux.personality` turns it off, and a restore keeps a process's layout.
@Suite struct AddressLayoutTests {
    /// aslr_layout's fields ("stack=...") as numbers, by name.
    static func fields(_ line: Substring) -> [String: UInt64] {
        var fields: [String: UInt64] = [:]
        for field in line.split(separator: " ") {
            let parts = field.split(separator: "=")
            if parts.count == 2, let value = UInt64(parts[1], radix: 16) { fields[String(parts[0])] = value }
        }
        return fields
    }

    /// `aslr_layout args` as `variant` ("", "-pie" or "-dyn") in a sandbox,
    /// with the host's system directories for the dynamic one.
    static func run(_ variant: String, _ args: [String], fixed: Bool = false,
                    prefix: [String] = []) throws -> RunscProcess.Result {
        let name = "aslr_layout" + variant
        let sandbox = try SandboxRun(prefix + ["/bin/" + name] + args, start: false)
        let binary = switch variant {
        case "-pie": try Fixtures.binary("aslr_layout", output: name, flags: ["-static-pie"])
        case "-dyn": try Fixtures.binary("aslr_layout", output: name, flags: [])
        default: try Fixtures.binary("aslr_layout")
        }
        try FileManager.default.copyItem(atPath: binary, toPath: sandbox.bundle + "/rootfs/bin/" + name)
        if variant == "-dyn" {
            let mounts = DynamicProgramTests.hostDirectories.filter { FileManager.default.fileExists(atPath: $0) }
                .map { ($0, $0, ["ro"]) }
            try BindMountTests.addBindMounts(mounts, to: sandbox.bundle)
        }
        if fixed { try SandboxRun.disableLayoutRandomization(bundle: sandbox.bundle) }
        return try sandbox.start().finish(timeout: 120)
    }

    static func lines(_ result: RunscProcess.Result) -> [Substring] {
        result.stdout.split(separator: "\n")
    }

    /// Two execs of one program: every randomised base moves (the executable
    /// only when it is a PIE, the interpreter only when there is one), and
    /// each lies in Linux's range.
    @Test(arguments: ["", "-pie", "-dyn"])
    func eachExecGetsANewLayout(_ variant: String) throws {
        let result = try Self.run(variant, ["exec-twice"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = Self.lines(result)
        try #require(lines.count == 2, "\(result.stdout)")
        let first = Self.fields(lines[0]), second = Self.fields(lines[1])
        var moved = ["stack", "mmap", "brk"]
        if variant != "" { moved.append("entry") }
        if variant == "-dyn" { moved.append("interp") }
        for name in moved { #expect(first[name] != second[name], "\(name) did not move: \(result.stdout)") }
        if variant == "" { #expect(first["entry"] == second["entry"]) }
        for fields in [first, second] {
            let stack = fields["stack"] ?? 0
            // randomize_stack_top: up to 16 GiB below the top, less the strings and arch_align_stack's 8 KiB.
            #expect(stack < 0x7fff_ffff_e000 && stack > 0x7fff_ffff_e000 - (16 << 30) - (1 << 20), "\(fields)")
            if variant != "" {
                // ELF_ET_DYN_BASE plus up to 2^28 pages.
                let entry = fields["entry"] ?? 0
                #expect(entry >= 0x5555_5555_4000 && entry < 0x5555_5555_4000 + (1 << 40) + (16 << 20), "\(fields)")
            }
            if variant == "-dyn" {
                // ld.so below the mmap base, itself below the stack's gap.
                #expect((fields["interp"] ?? 0) < stack - (128 << 20), "\(fields)")
            }
        }
    }

    /// personality(ADDR_NO_RANDOMIZE), then two execs: the same layout each
    /// time, and the same in another sandbox.
    @Test(arguments: ["", "-pie", "-dyn"])
    func personalityWithoutRandomisationRepeatsTheLayout(_ variant: String) throws {
        let one = try Self.run(variant, ["norandom-twice"])
        let two = try Self.run(variant, ["norandom-twice"])
        #expect(one.status == 0, "\(one.stderr)")
        let lines = Self.lines(one)
        try #require(lines.count == 2, "\(one.stdout)")
        #expect(lines[0] == lines[1])
        #expect(one.stdout == two.stdout)
    }

    /// The spec's `linux.personality` ADDR_NO_RANDOMIZE: the container's
    /// first process and what it execs keep one layout from run to run.
    @Test(arguments: ["", "-pie", "-dyn"])
    func theSpecsPersonalityRepeatsTheLayoutFromRunToRun(_ variant: String) throws {
        let one = try Self.run(variant, ["exec-twice"], fixed: true)
        let two = try Self.run(variant, ["exec-twice"], fixed: true)
        #expect(one.status == 0, "\(one.stderr)")
        let lines = Self.lines(one)
        try #require(lines.count == 2, "\(one.stdout)")
        #expect(lines[0] == lines[1])
        #expect(one.stdout == two.stdout)
    }

    /// Debian's setarch -R (dynamic, through ld.so) runs the program without
    /// randomisation; run without it, the same program's layout moves.
    @Test func setarchDashRInTheSandboxRepeatsTheLayout() throws {
        let setarch = "/usr/bin/setarch"
        try #require(FileManager.default.isExecutableFile(atPath: setarch), "\(setarch) is not installed")
        let one = try Self.run("-dyn", [], prefix: [setarch, "x86_64", "-R"])
        let two = try Self.run("-dyn", [], prefix: [setarch, "x86_64", "-R"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(!one.stdout.isEmpty)
        #expect(one.stdout == two.stdout)
        let random = try Self.run("-dyn", [], prefix: [setarch, "x86_64"])
        #expect(random.status == 0, "\(random.stderr)")
        #expect(random.stdout != one.stdout)
    }

    /// personality(2)'s answers and what exec keeps, against Linux.
    @Test func personalityAnswersAsLinux() throws {
        let result = try Self.run("", ["personality"])
        let native = try Fixtures.runNatively("aslr_layout", ["personality"])
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// Dynamic Debian programs start with a random layout and still run.
    @Test(arguments: [["/usr/bin/true"], ["/usr/bin/python3", "-c", "pass"]])
    func aDynamicProgramRunsWithARandomLayout(_ args: [String]) throws {
        try #require(FileManager.default.isExecutableFile(atPath: args[0]), "\(args[0]) is not installed")
        for _ in 0..<2 {
            let result = try DynamicProgramTests.runWithHostSystem(args)
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    /// A process with a random layout, checkpointed mid-work and restored:
    /// it finds everything where it was and keeps allocating (the restore
    /// does not draw a new layout).
    @Test func aRandomisedProcessKeepsItsLayoutAcrossARestore() throws {
        let session = try CheckpointSession(["/bin/aslr_layout", "loop", "20"])
        try session.runDetached("c1", output: "before")
        try session.waitForLines(4, in: "before")
        let saved = try session.checkpoint("c1", image: "image")
        #expect(saved.status == 0, "\(saved.stderr)")
        let status = try session.restore("c2", image: "image", output: "after")
        #expect(status == 0, "\(session.errors(of: "after"))")
        let lines = session.lines("before") + session.lines("after")
        try #require(lines.count == 21, "\(lines)")
        #expect(lines[0].hasPrefix("stack="))
        #expect(!session.lines("after").isEmpty, "the checkpoint came after the end")
        for (index, line) in lines.dropFirst().enumerated() { #expect(line == "tick \(index) same layout") }
    }
}

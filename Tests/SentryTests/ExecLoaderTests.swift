import Testing
@testable import Sentry

/// Kernel.createProcess and loadExecutable on a tmpfs tree: PATH search,
/// do_open_execat's refusals, `#!` lines read as binfmt_script reads them.
@Suite struct ExecLoaderTests {
    static func makeKernel() throws -> (Kernel, TestTree) {
        let tree = try TestTree()
        let kernel = Kernel(memoryFile: try MemoryFile.create(capacity: 1 << 30), hostName: "test")
        kernel.vfs = tree.vfs
        try tree.mkdir("/bin")
        try put(tree, "/bin/prog", makeELF(), mode: 0o755)
        return (kernel, tree)
    }

    static func put(_ tree: TestTree, _ path: String, _ bytes: [UInt8], mode: UInt32) throws {
        let file = try tree.vfs.open(path, from: tree.root, context: tree.context,
                                     flags: LinuxFile.writeOnly | LinuxFile.create | LinuxFile.truncate,
                                     mode: mode, umask: 0)
        _ = try file.write(bytes, at: nil, waiter: nil)
    }

    static func args(_ filename: String, _ argv: [String]) -> CreateProcessArgs {
        CreateProcessArgs(filename: filename, argv: argv, envp: ["PATH=/nowhere:/bin"], credentials: Credentials(),
                          limits: Limits())
    }

    /// The strings the new program finds in its argv, as /proc/self/cmdline shows them.
    static func commandLine(_ task: Task) throws -> [String] {
        let range = try #require(task.mm).argvRange
        let bytes = try task.copyIn(from: range.lowerBound, count: range.count)
        return bytes.split(separator: 0, omittingEmptySubsequences: false).dropLast().map {
            String(decoding: $0, as: UTF8.self)
        }
    }

    @Test func aScriptFoundInPathRunsItsInterpreterWithTheArgumentAndItsPath() throws {
        let (kernel, tree) = try Self.makeKernel()
        try Self.put(tree, "/bin/script", Array("#! /bin/prog  -x y \t\necho\n".utf8), mode: 0o755)
        let task = try kernel.createProcess(Self.args("script", ["script", "a"]))
        #expect(try Self.commandLine(task) == ["/bin/prog", "-x y", "/bin/script", "a"])
        #expect(task.mm?.executablePath == "/bin/prog")
        #expect(task.name == "script")
    }

    /// comm is the file's first 15 bytes; a character the cut splits is
    /// dropped (it once grew into U+FFFD and the whole name was lost).
    @Test func aLongNameIsCutToFifteenBytesOnACharacterBoundary() throws {
        let (kernel, tree) = try Self.makeKernel()
        try Self.put(tree, "/bin/abcdefghijklmné", makeELF(), mode: 0o755)
        let task = try kernel.createProcess(Self.args("/bin/abcdefghijklmné", ["x"]))
        #expect(task.name == "abcdefghijklmn")
    }

    @Test func refusalsNameTheFileWithLinuxsErrno() throws {
        let (kernel, tree) = try Self.makeKernel()
        try Self.put(tree, "/bin/plain", makeELF(), mode: 0o644)
        try Self.put(tree, "/bin/garbage", Array("not a program".utf8), mode: 0o755)
        try Self.put(tree, "/bin/bare", Array("#!".utf8), mode: 0o755)
        let cases: [(String, SyscallError)] = [("/bin/plain", .eacces), ("/bin", .eacces), ("/bin/missing", .enoent),
                                               ("/bin/garbage", .enoexec), ("/bin/bare", .eacces),
                                               ("missing", .enoent)]
        for (name, errno) in cases {
            #expect {
                _ = try kernel.createProcess(Self.args(name, [name]))
            } throws: { error in
                guard let error = error as? ExecError else { return false }
                return error.errno == errno && error.message.contains(name)
            }
        }
    }

    @Test(arguments: [
        ("#!/bin/sh\n", "/bin/sh", nil),
        ("#!/bin/sh -e\n", "/bin/sh", "-e"),
        ("#!  /bin/sh   a b  \n", "/bin/sh", "a b"),
        ("#!/bin/sh", "/bin/sh", nil),
        ("#!/bin/sh\t-x", "/bin/sh", "-x"),
    ] as [(String, String, String?)])
    func interpreterLines(_ line: String, _ interpreter: String, _ argument: String?) throws {
        let parsed = try Kernel.parseInterpreterLine(Array(line.utf8), name: "s")
        #expect(parsed.0 == interpreter)
        #expect(parsed.1 == argument)
    }

    @Test func aLineWithNoInterpreterOrOneTooLongIsENOEXEC() {
        for line in ["#!   \n", "#!" + String(repeating: "x", count: 300)] {
            #expect { try Kernel.parseInterpreterLine(Array(line.utf8), name: "s") } throws: { error in
                (error as? ExecError)?.errno == .enoexec
            }
        }
    }

    @Test func argumentsOverAQuarterOfTheStackLimitAreE2BIG() throws {
        let string = String(repeating: "a", count: 100_000)
        #expect {
            try Kernel.checkArgumentSpace(argv: [String](repeating: string, count: 3), envp: [], filename: "/p",
                                          stackLimit: 1 << 20)
        } throws: { error in (error as? ExecError)?.errno == .e2big }
        try Kernel.checkArgumentSpace(argv: [String](repeating: string, count: 3), envp: [], filename: "/p",
                                      stackLimit: 8 << 20)
        #expect {
            try Kernel.checkArgumentSpace(argv: [String(repeating: "a", count: ELFLoader.maxArgumentLength)], envp: [],
                                          filename: "/p", stackLimit: 8 << 20)
        } throws: { error in (error as? ExecError)?.errno == .e2big }
    }
}

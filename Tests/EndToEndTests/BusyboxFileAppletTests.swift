import Foundation
import Testing

/// Busybox applets that make, copy, archive and read files: a session of
/// one applet per container over a writable rootfs, compared step by step
/// with the same session run natively on a copy of the starting tree.
@Suite struct BusyboxFileAppletTests {
    static let steps: [[String]] = [
        ["mkdir", "-p", "a/b/c"], ["ls", "-R", "a"],
        // An epoch time, and no mode: the native run has the host's time zone and umask.
        ["touch", "-d", "@1577934245", "a/t"], ["stat", "-c", "%n %s %Y %F", "a/t"],
        ["cp", "f", "a/f2"], ["cat", "a/f2"], ["cp", "-r", "d", "d2"], ["ls", "-R", "d2"],
        ["mv", "a/f2", "a/f3"], ["ls", "a"], ["ln", "-s", "f", "lnk"], ["readlink", "lnk"],
        ["rm", "-r", "d2"], ["ls"], ["rmdir", "a/b/c"], ["ls", "a/b"],
        ["tar", "cf", "t.tar", "d"], ["tar", "tf", "t.tar"], ["mkdir", "x"], ["tar", "xf", "t.tar", "-C", "x"],
        ["ls", "-R", "x"], ["cat", "x/d/e/g"],
        ["dd", "if=/dev/zero", "of=z", "bs=1M", "count=4"], ["stat", "-c", "%s", "z"], ["md5sum", "z"],
        ["sort", "-o", "sorted", "f"], ["cat", "sorted"], ["find", ".", "-name", "*.tar"], ["wc", "-c", "f", "t.tar"],
        ["od", "-c", "f"], ["tr", "a-z", "A-Z", "f"], ["cut", "-c", "1-3", "f"], ["uniq", "-c", "f"],
        ["tail", "-n", "1", "f"], ["md5sum", "f"], ["seq", "3"], ["expr", "3", "+", "4"], ["test", "-d", "d"],
        ["test", "-f", "d"], ["basename", "a/t", "t"], ["chmod", "600", "f"], ["stat", "-c", "%a", "f"],
        ["fallocate", "-l", "8192", "fa"], ["stat", "-c", "%s %b", "fa"], ["rm", "-rf", "x", "a"], ["ls"],
    ]

    @Test func aFileSessionMatchesANativeRun() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox", "true"], busybox: true, start: false)
        let configPath = sandbox.bundle + "/config.json"
        let rootfs = sandbox.bundle + "/rootfs"
        let native = sandbox.workspace.path + "/native"
        for tree in [rootfs + "/w", native] { try Self.makeStartingTree(at: tree) }
        var sandboxResults: [RunscProcess.Result] = []
        for step in Self.steps {
            try Self.setProcess(in: configPath, args: ["/bin/busybox"] + step, cwd: "/w")
            sandboxResults.append(try sandbox.start().finish(timeout: 60))
        }
        for (step, inSandbox) in zip(Self.steps, sandboxResults) {
            let natively = try Fixtures.run(Fixtures.busybox, step, in: native)
            #expect(inSandbox.status == natively.status, "\(step): \(inSandbox.stderr)")
            #expect(inSandbox.stdout == natively.stdout, "\(step)")
        }
    }

    @Test func pathAppletsSeeTheContainersTree() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox", "true"],
                                     files: ["etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"],
                                     busybox: true, start: false)
        let configPath = sandbox.bundle + "/config.json"
        let expectations: [([String], String)] = [
            (["readlink", "-f", "/proc/self/exe"], "/bin/busybox\n"),
            (["realpath", "/bin/../bin/busybox"], "/bin/busybox\n"),
            (["pwd"], "/\n"),
            (["hostname"], "runsc\n"),
            // No additionalGids in the spec: no supplementary groups, as runc sets them.
            (["id"], "uid=0(root) gid=0(root)\n"),
            (["env"], "PATH=/usr/local/bin:/usr/bin:/bin\nHOME=/root\n"),
            (["uname", "-snm"], "Linux runsc x86_64\n"),
        ]
        for (arguments, expected) in expectations {
            try Self.setProcess(in: configPath, args: ["/bin/busybox"] + arguments, cwd: "/")
            let result = try sandbox.start().finish(timeout: 60)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            #expect(result.stdout == expected, "\(arguments)")
        }
    }

    @Test func sendfileAndCopyFileRangeMatchANativeRun() throws {
        let sandbox = try SandboxRun(["/bin/file_copy"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("file_copy"),
                                         toPath: sandbox.bundle + "/rootfs/bin/file_copy")
        let result = try sandbox.start().finish(timeout: 60)
        let native = try Fixtures.runNatively("file_copy")
        #expect(result.status == native.status, "\(result.stderr)")
        #expect(result.stdout == native.stdout)
    }

    /// f ("hello", "world") and d/e/g ("x").
    /// `rm -r` reads a directory in batches and removes as it goes: a
    /// directory larger than one batch must go entirely.
    @Test func removingALargeDirectoryRemovesAllOfIt() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Fixtures.busybox), "no \(Fixtures.busybox): scripts/test installs busybox-static")
        let sandbox = try SandboxRun(["/bin/busybox", "rm", "-r", "/w/big"], busybox: true, start: false)
        let big = sandbox.bundle + "/rootfs/w/big"
        try FileManager.default.createDirectory(atPath: big, withIntermediateDirectories: true)
        for index in 0..<2000 {
            FileManager.default.createFile(atPath: big + "/file-with-a-longish-name-\(index)", contents: nil)
        }
        try Self.setProcess(in: sandbox.bundle + "/config.json", args: ["/bin/busybox", "rm", "-r", "/w/big"], cwd: "/")
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: big))
    }

    static func makeStartingTree(at path: String) throws {
        try FileManager.default.createDirectory(atPath: path + "/d/e", withIntermediateDirectories: true)
        try Data("hello\nworld\n".utf8).write(to: URL(fileURLWithPath: path + "/f"))
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: path + "/d/e/g"))
    }

    /// The process's args and cwd, and a writable rootfs.
    static func setProcess(in configPath: String, args: [String], cwd: String) throws {
        try SandboxRun.setProcess(in: configPath, args: args, env: ["PATH=/usr/local/bin:/usr/bin:/bin"], user: 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        guard var spec = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              var process = spec["process"] as? [String: Any], var root = spec["root"] as? [String: Any] else {
            throw SetupError("config.json has no process or root")
        }
        process["cwd"] = cwd
        root["readonly"] = false
        spec["process"] = process
        spec["root"] = root
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: configPath))
    }
}

import Testing
@testable import Sentry

/// One process, PID 7, with a pipe at FD 3.
final class FakeProcSource: ProcSource, @unchecked Sendable {
    let table = FDTable()
    var root: VirtualPath?

    func processIDs() -> [Int32] { [7] }

    func snapshot(of processID: Int32) -> ProcessSnapshot? {
        guard processID == 7 else { return nil }
        return ProcessSnapshot(processID: 7, parentProcessID: 0, name: "app", credentials: Credentials(),
                               threadCount: 1, commandLine: Array("app\0-x\0".utf8), executablePath: "/bin/app",
                               maps: "00400000-00401000 r-xp 00000000 00:00 0 /bin/app\n", fdTable: table,
                               root: root, workingDirectory: root)
    }
}

@Suite struct ProcfsTests {
    @Test func selfLinksToTheCallerAndFilesShowTheProcess() throws {
        let tree = try TestTree()
        let proc = ProcFilesystem.make(deviceNumber: tree.vfs.allocateDeviceNumber())
        let source = FakeProcSource()
        source.root = tree.root
        proc.source = source
        try tree.vfs.mount(proc, at: "/proc")
        let (reader, _) = Pipe.makePair()
        _ = try source.table.install(reader, closeOnExec: false, minimum: 3)
        let context = PathContext(root: tree.root, workingDirectory: tree.root, credentials: .root, processID: 7)
        func read(_ path: String) throws -> String {
            let file = try tree.vfs.open(path, from: tree.root, context: context, flags: LinuxFile.readOnly, mode: 0,
                                         umask: 0)
            return String(decoding: try file.read(count: 1 << 16, at: nil, waiter: nil), as: UTF8.self)
        }
        #expect(try tree.vfs.readLink("/proc/self", from: tree.root, context: context) == "7")
        #expect(try read("/proc/self/cmdline") == "app\0-x\0")
        #expect(try read("/proc/7/status").contains("Pid:\t7\n"))
        #expect(try read("/proc/self/maps").hasSuffix("/bin/app\n"))
        #expect(try tree.vfs.readLink("/proc/self/exe", from: tree.root, context: context) == "/bin/app")
        #expect(try tree.vfs.readLink("/proc/self/fd/3", from: tree.root, context: context).hasPrefix("pipe:["))
        #expect(try read("/proc/meminfo").hasPrefix("MemTotal:"))
        #expect(try tree.vfs.lookup("/proc/self/cwd", from: tree.root, context: context) == tree.root)
        #expect(errnoOf { _ = try tree.vfs.lookup("/proc/8", from: tree.root, context: context) } == .enoent)
        #expect(try tree.names("/proc/7/fd") == [".", "..", "3"])
        #expect(try read("/proc/self/stat").hasPrefix("7 (app) S 0 "))
        #expect(try read("/proc/uptime").hasSuffix("\n"))
        #expect(errnoOf { _ = try tree.vfs.open("/proc/self/status", from: tree.root, context: context,
                                                flags: LinuxFile.writeOnly, mode: 0, umask: 0) } == .eacces)
    }

    /// glibc's readdir skips entries whose d_ino is 0, so every name needs a
    /// number, and the one getdents64 reports is the one stat reports.
    @Test func listedEntriesHaveTheInodeNumbersStatReports() throws {
        let tree = try TestTree()
        let proc = ProcFilesystem.make(deviceNumber: tree.vfs.allocateDeviceNumber())
        let source = FakeProcSource()
        source.root = tree.root
        proc.source = source
        try tree.vfs.mount(proc, at: "/proc")
        let context = PathContext(root: tree.root, workingDirectory: tree.root, credentials: .root, processID: 7)
        for directory in ["/proc", "/proc/7"] {
            let location = try tree.vfs.lookup(directory, from: tree.root, context: context)
            let entries = try VFSLock.shared.withLock { _ throws(SyscallError) in
                try location.inode.listEntries(in: location.dentry)
            }
            #expect(!entries.isEmpty)
            for entry in entries {
                #expect(entry.inodeNumber != 0, "\(directory)/\(entry.name)")
                let child = try tree.vfs.lookup(directory + "/" + entry.name, from: tree.root, context: context,
                                                followFinal: false)
                #expect(try child.inode.attributes().inodeNumber == entry.inodeNumber, "\(entry.name)")
            }
        }
    }

    @Test func mountsShowTheMountTableEscaped() {
        let filesystem = TmpfsFilesystem.make(deviceNumber: DeviceNumber.make(major: 0, minor: 9), rootMode: 0o1777)
        let root = Mount(filesystem: filesystem, parent: nil, mountpoint: nil, target: "/", readOnly: true)
        let child = Mount(filesystem: filesystem, parent: root, mountpoint: nil, target: "/a dir", readOnly: false)
        #expect(ProcMountTable.mounts([root, child]) == "tmpfs / tmpfs ro 0 0\ntmpfs /a\\040dir tmpfs rw 0 0\n")
        #expect(ProcMountTable.mountInformation([root, child])
            == "1 1 0:9 / / ro - tmpfs tmpfs rw\n2 1 0:9 / /a\\040dir rw - tmpfs tmpfs rw\n")
    }
}

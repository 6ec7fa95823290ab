import Glibc
import State
import Testing
@testable import Sentry

/// A host directory laid out as a tiny rootfs, removed at deinit.
final class HostTree {
    let path: String

    init() throws {
        var template = Array("/tmp/hostfs-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SyscallError.eio }
        path = String(cString: made)
        try run("mkdir -p \(path)/etc \(path)/bin \(path)/data && printf 'root:x:0:0\\n' > \(path)/etc/passwd"
            + " && printf hello > \(path)/data/greeting && ln -s /etc/passwd \(path)/bin/abs"
            + " && ln -s ../../../../../../etc/passwd \(path)/bin/rel && ln -s /bin \(path)/linkdir")
    }

    deinit { _ = try? run("rm -rf \(path)") }

    func run(_ command: String) throws {
        guard system(command) == 0 else { throw SyscallError.eio }
    }

    func makeVFS(readOnly: Bool) throws -> (VirtualFilesystem, PathContext) {
        let vfs = VirtualFilesystem()
        let rootfs = try HostFilesystem.make(hostPath: path, readOnly: readOnly,
                                             deviceNumber: vfs.allocateDeviceNumber())
        let root = vfs.mountRoot(rootfs, readOnly: readOnly)
        try vfs.mount(TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber()), at: "/tmp")
        try vfs.attachMemoryFile(TestTree.memoryFile())
        return (vfs, PathContext(root: root, workingDirectory: root, credentials: .root))
    }
}

@Suite(.serialized) struct HostfsTests {
    func read(_ vfs: VirtualFilesystem, _ context: PathContext, _ path: String) throws -> String {
        let file = try vfs.open(path, from: context.root, context: context, flags: LinuxFile.readOnly, mode: 0,
                                umask: 0)
        return String(decoding: try file.read(count: 4096, at: nil, waiter: nil), as: UTF8.self)
    }

    @Test func symlinksResolveInsideTheRootfs() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: true)
        #expect(try read(vfs, context, "/bin/abs") == "root:x:0:0\n")
        #expect(try read(vfs, context, "/bin/rel") == "root:x:0:0\n")
        #expect(try read(vfs, context, "/linkdir/abs") == "root:x:0:0\n")
        #expect(try vfs.readLink("/bin/abs", from: context.root, context: context) == "/etc/passwd")
        #expect(try vfs.lookup("/linkdir", from: context.root, context: context, followFinal: false)
            .inode.attributes().type == .symlink)
    }

    /// A mount point is not looked up again on the host (no stat per walk
    /// through it), and stays what it is when the host changes what the
    /// mount covers: replaced by a file, the mount is still reached, as on
    /// Linux, where a mount hides what is under it.
    @Test func aMountPointStaysWhateverTheHostPutsUnderIt() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: false)
        try vfs.mount(TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber()), at: "/data")
        try vfs.makeDirectory("/data/inside", from: context.root, context: context, mode: 0o755, umask: 0)
        _ = try vfs.lookup("/data/inside", from: context.root, context: context)
        try host.run("rm -rf \(host.path)/data && printf covered > \(host.path)/data")
        #expect(try vfs.lookup("/data/inside", from: context.root, context: context).inode.isDirectory)
        #expect(try vfs.lookup("/data", from: context.root, context: context).inode.attributes().type == .directory)
    }

    /// A listing is kept once the directory's change time has settled (as
    /// the file cache keeps a file) and answers while its stamp holds; a
    /// name the host adds, removes or renames after shows at the next
    /// listing, which is not kept while that change is fresh.
    @Test func listingsFollowTheHostsChangesWhetherKeptOrNot() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: true)
        func listed(_ path: String) throws -> (names: [String], kept: Bool) {
            let dentry = try vfs.lookup(path, from: context.root, context: context, followFinal: true).dentry
            let names = try dentry.inode.listEntries(in: dentry).map(\.name)
            return (names, (dentry.inode as? HostInode)?.keepsListing ?? false)
        }
        try host.run("mkdir -p \(host.path)/old && touch \(host.path)/old/a")
        #expect(try listed("/old") == (["a"], false), "just changed: not kept")
        usleep(useconds_t(FileCache.settleTime + 1) * 1_000_000 + 100_000)
        #expect(try listed("/old") == (["a"], true), "settled: kept")
        #expect(try listed("/old") == (["a"], true), "answered from what was kept")
        try host.run("touch \(host.path)/old/b")
        #expect(try listed("/old") == (["a", "b"], false))
        try host.run("rm \(host.path)/old/a")
        #expect(try listed("/old") == (["b"], false))
        try host.run("mv \(host.path)/old/b \(host.path)/old/c")
        #expect(try listed("/old") == (["c"], false))
    }

    @Test func readOnlyRootfsRefusesWritesWithEROFS() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: true)
        #expect(errnoOf { _ = try vfs.open("/data/new", from: context.root, context: context,
                                           flags: LinuxFile.writeOnly | LinuxFile.create, mode: 0o644, umask: 0) }
            == .erofs)
        #expect(errnoOf { _ = try vfs.open("/data/greeting", from: context.root, context: context,
                                           flags: LinuxFile.writeOnly, mode: 0, umask: 0) } == .erofs)
        #expect(errnoOf { try vfs.makeDirectory("/d", from: context.root, context: context, mode: 0o755, umask: 0) }
            == .erofs)
        #expect(errnoOf { try vfs.makeDirectory("/etc", from: context.root, context: context, mode: 0o755, umask: 0) }
            == .eexist)
        #expect(errnoOf { try vfs.remove("/data/greeting", from: context.root, context: context, directory: false) }
            == .erofs)
        let tmp = try vfs.open("/tmp/ok", from: context.root, context: context,
                               flags: LinuxFile.writeOnly | LinuxFile.create, mode: 0o644, umask: 0)
        #expect(try tmp.write([1], at: nil, waiter: nil) == 1)
    }

    @Test func writableRootfsWritesGoToTheHostDirectory() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: false)
        try vfs.makeDirectory("/data/sub", from: context.root, context: context, mode: 0o755, umask: 0o022)
        let file = try vfs.open("/data/sub/out", from: context.root, context: context,
                                flags: LinuxFile.writeOnly | LinuxFile.create, mode: 0o640, umask: 0o022)
        #expect(try file.write(Array("written".utf8), at: nil, waiter: nil) == 7)
        var host_ = Glibc.stat()
        #expect(stat(host.path + "/data/sub/out", &host_) == 0)
        #expect(host_.st_size == 7)
        #expect(host_.st_mode & 0o777 == 0o640)
        try vfs.rename("/data/sub/out", from: context.root, to: "/data/moved", from: context.root, context: context,
                       flags: 0)
        #expect(try read(vfs, context, "/data/moved") == "written")
        try vfs.makeSymlink(target: "moved", at: "/data/ln", from: context.root, context: context)
        #expect(try read(vfs, context, "/data/ln") == "written")
        try vfs.remove("/data/ln", from: context.root, context: context, directory: false)
        try vfs.remove("/data/sub", from: context.root, context: context, directory: true)
        #expect(access(host.path + "/data/sub", F_OK) != 0)
        #expect(errnoOf { try vfs.remove("/data/missing", from: context.root, context: context, directory: false) }
            == .enoent)
        let listing = try vfs.open("/", from: context.root, context: context,
                                   flags: LinuxFile.readOnly | LinuxFile.directory, mode: 0, umask: 0)
        #expect(try listing.readDirectory(capacity: 4096).count > 0)
    }

    @Test func openFilesReopenAfterRestoreAndRefuseChangedOnes() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: false)
        let table = FDTable()
        let file = try vfs.open("/data/greeting", from: context.root, context: context, flags: LinuxFile.readOnly,
                                mode: 0, umask: 0)
        _ = try file.read(count: 2, at: nil, waiter: nil)
        _ = try table.install(file, closeOnExec: false)
        let holder = SaveHolder()
        holder.vfs = vfs
        holder.table = table
        holder.fsContext = FSContext(root: context.root)
        var registry = vfsRegistry()
        registry.register(SaveHolder.self)
        let image = try StateEncoder.encode(root: holder, registry: registry)

        let refused = try StateDecoder(registry: registry).decode(image, as: SaveHolder.self)
        do {
            try refused.vfs.reattachHostFilesystems { _, _ in nil }
            Issue.record("a host directory the restoring bundle does not mount was attached")
        } catch let error as HostReopenError {
            #expect(error.reason.contains("the bundle's spec mounts no host directory"))
        }

        let restored = try StateDecoder(registry: registry).decode(image, as: SaveHolder.self)
        try restored.vfs.reattachHostFilesystems()
        #expect(try restored.table.get(0).read(count: 100, at: nil, waiter: nil) == Array("llo".utf8))

        try host.run("printf 'changed!' > \(host.path)/data/greeting")
        let changed = try StateDecoder(registry: registry).decode(image, as: SaveHolder.self)
        #expect(throws: HostReopenError.self) { try changed.vfs.reattachHostFilesystems() }

        try host.run("rm \(host.path)/data/greeting")
        let gone = try StateDecoder(registry: registry).decode(image, as: SaveHolder.self)
        do {
            try gone.vfs.reattachHostFilesystems()
            Issue.record("a deleted file reopened")
        } catch let error as HostReopenError {
            #expect(error.description == "restore: /data/greeting: the file is gone")
        }
    }

    /// chmod acts on the name it resolved: a symlink renamed over that name
    /// since (by another thread, or on the host) is not followed out of the rootfs.
    @Test func chmodDoesNotFollowASymlinkSwappedInAfterTheLookup() throws {
        let host = try HostTree()
        let outside = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: false)
        let location = try vfs.lookup("/data/greeting", from: context.root, context: context, followFinal: false)
        try location.inode.setAttributes(AttributeChange(mode: 0o600))
        var status = Glibc.stat()
        #expect(stat(host.path + "/data/greeting", &status) == 0 && status.st_mode & 0o777 == 0o600)
        try host.run("chmod 644 \(outside.path)/etc/passwd && ln -sf \(outside.path)/etc/passwd \(host.path)/data/greeting")
        _ = errnoOf { try location.inode.setAttributes(AttributeChange(mode: 0o777)) }
        #expect(stat(outside.path + "/etc/passwd", &status) == 0 && status.st_mode & 0o777 == 0o644)
    }

    /// An open after the name became a FIFO (renamed over it since the
    /// lookup) fails instead of blocking on, or handing out, a non-regular host file.
    @Test func openRefusesANonRegularFileSwappedInAfterTheLookup() throws {
        let host = try HostTree()
        let (vfs, context) = try host.makeVFS(readOnly: false)
        let location = try vfs.lookup("/data/greeting", from: context.root, context: context)
        try host.run("rm \(host.path)/data/greeting && mkfifo \(host.path)/data/greeting")
        // The inode's open, as openResolved reaches it when the swap lands after its access check.
        #expect(errnoOf { _ = try location.inode.open(at: location, flags: LinuxFile.readOnly) } == .enxio)
    }
}

/// The one way hostfs opens a name on the host stays beneath the directory
/// it starts from, with openat2 and with the walk used where openat2 is missing.
@Suite struct OpenBeneathTests {
    static func open(_ way: String, _ directory: Int32, _ names: [String], _ flags: Int32) throws(SyscallError) -> Int32 {
        way == "walk" ? try Host.walkBeneath(directory, names, flags: flags)
            : try Host.openBeneath(directory, names, flags: flags)
    }

    @Test(arguments: ["openat2", "walk"])
    func namesLeadingOutOrThroughLinksAreRefused(way name: String) throws {
        let open = { (directory: Int32, names: [String], flags: Int32) throws(SyscallError) -> Int32 in
            try Self.open(name, directory, names, flags)
        }
        let tree = try HostTree()
        let directory = Glibc.open(tree.path, Host.pathOnly | O_DIRECTORY | O_CLOEXEC)
        try #require(directory >= 0)
        defer { close(directory) }
        let fd = try open(directory, ["data", "greeting"], O_RDONLY)
        #expect(try Host.read(fd, count: 16, at: 0) == Array("hello".utf8), "\(name)")
        close(fd)
        for names in [[".."], ["data", ".."], ["..", ".."], ["a/b"], ["/etc"], [""], ["."], ["a\u{0}b"],
                      [String(repeating: "a", count: 256)]] {
            #expect(throws: SyscallError.einval, "\(name) \(names)") { _ = try open(directory, names, O_RDONLY) }
        }
        for names in [["bin", "abs"], ["bin", "rel"], ["linkdir", "sh"]] {
            #expect(throws: SyscallError.self, "\(name) \(names) follows a link") { _ = try open(directory, names, O_RDONLY) }
        }
    }
}

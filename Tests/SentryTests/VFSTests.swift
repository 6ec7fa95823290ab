import State
import Testing
@testable import Sentry

@Suite struct PathResolutionTests {
    @Test func dotDotNeverLeavesTheRoot() throws {
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        let inner = try tree.vfs.lookup("/tmp/d", from: tree.root, context: tree.context)
        let chrooted = PathContext(root: inner, workingDirectory: inner, credentials: .root)
        let up = try tree.vfs.lookup("../../..", from: inner, context: chrooted)
        #expect(up == inner)
        #expect(try tree.vfs.lookup("/../../dev/..", from: tree.root, context: tree.context) == tree.root)
        let tmp = try tree.vfs.lookup("/tmp/d/..", from: tree.root, context: tree.context)
        #expect(VirtualFilesystem.pathString(of: tmp, root: tree.root) == "/tmp")
        #expect(VirtualFilesystem.pathString(of: inner, root: tree.root) == "/tmp/d")
    }

    /// "/" followed by a combining mark is one Swift Character but two
    /// components to Linux: a name must never carry the "/" along.
    @Test func pathsSplitAtEverySlashByte() throws {
        #expect(LinuxFile.components(of: "a/\u{301}b//c/") == ["a", "\u{301}b", "c"])
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        try tree.write("/tmp/d/\u{301}f", "t")
        #expect(try tree.read("/tmp/d/\u{301}f") == "t")
        let directory = try tree.vfs.lookup("/tmp/d", from: tree.root, context: tree.context)
        #expect(directory.dentry.children["\u{301}f"] != nil)
        #expect(directory.dentry.children.keys.allSatisfy { !$0.utf8.contains(UInt8(ascii: "/")) })
    }

    @Test func symlinksResolveRelativeToTheirDirectory() throws {
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        try tree.write("/tmp/d/target", "t")
        try tree.symlink("target", "/tmp/d/rel")
        try tree.symlink("/tmp/d", "/tmp/abs")
        try tree.symlink("d/../d/rel", "/tmp/chain")
        #expect(try tree.read("/tmp/d/rel") == "t")
        #expect(try tree.read("/tmp/abs/target") == "t")
        #expect(try tree.read("/tmp/chain") == "t")
        #expect(try tree.stat("/tmp/abs", follow: false).type == .symlink)
        #expect(try tree.stat("/tmp/abs/", follow: false).type == .directory)
        #expect(try tree.vfs.readLink("/tmp/chain", from: tree.root, context: tree.context) == "d/../d/rel")
        #expect(errnoOf { _ = try tree.vfs.readLink("/tmp/d", from: tree.root, context: tree.context) } == .einval)
    }

    @Test func symlinkLoopsStopWithELOOP() throws {
        let tree = try TestTree()
        try tree.symlink("b", "/tmp/a")
        try tree.symlink("a", "/tmp/b")
        #expect(errnoOf { _ = try tree.stat("/tmp/a") } == .eloop)
        #expect(errnoOf { _ = try tree.open("/tmp/a", LinuxFile.readOnly) } == .eloop)
        #expect(try tree.stat("/tmp/a", follow: false).type == .symlink)
        try tree.write("/tmp/file", "")
        try tree.symlink("file", "/tmp/link")
        #expect(errnoOf { _ = try tree.open("/tmp/link", LinuxFile.readOnly | LinuxFile.noFollow) } == .eloop)
        for index in 0..<41 {
            try tree.symlink(index == 0 ? "file" : "c\(index - 1)", "/tmp/c\(index)")
        }
        #expect(try tree.stat("/tmp/c39").type == .regular)
        #expect(errnoOf { _ = try tree.stat("/tmp/c40") } == .eloop)
    }

    @Test func creatingThroughADanglingSymlinkMakesItsTarget() throws {
        let tree = try TestTree()
        try tree.symlink("made", "/tmp/dangling")
        try tree.write("/tmp/dangling", "via link")
        #expect(try tree.read("/tmp/made") == "via link")
        #expect(errnoOf { _ = try tree.open("/tmp/dangling", LinuxFile.create | LinuxFile.exclusive) } == .eexist)
    }

    @Test func longNamesAndPathsAreRefused() throws {
        let tree = try TestTree()
        let longName = String(repeating: "n", count: 256)
        #expect(errnoOf { _ = try tree.stat("/tmp/" + longName) } == .enametoolong)
        #expect(errnoOf { try tree.write("/tmp/" + String(repeating: "n", count: 255), "") } == nil)
        let longPath = String(repeating: "a/", count: 2048)
        #expect(errnoOf { _ = try tree.stat(longPath) } == .enametoolong)
        #expect(errnoOf { _ = try tree.stat("") } == .enoent)
    }

    @Test func walkingThroughAFileIsENOTDIR() throws {
        let tree = try TestTree()
        try tree.write("/tmp/f", "")
        #expect(errnoOf { _ = try tree.stat("/tmp/f/x") } == .enotdir)
        #expect(errnoOf { _ = try tree.stat("/tmp/f/") } == .enotdir)
    }

    @Test func searchPermissionIsChecked() throws {
        var tree = try TestTree()
        try tree.mkdir("/tmp/private", mode: 0o700)
        try tree.write("/tmp/private/f", "")
        tree.credentials = .user(uid: 1000, gid: 1000)
        #expect(errnoOf { _ = try tree.stat("/tmp/private/f") } == .eacces)
    }

    @Test func dirfdRelativeLookupsStartAtTheDirectory() throws {
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        try tree.write("/tmp/d/f", "in d")
        let table = FDTable()
        let directory = try tree.open("/tmp/d", LinuxFile.readOnly | LinuxFile.directory)
        let fd = try table.install(directory, closeOnExec: false)
        let start = try VirtualFilesystem.start(dirfd: fd, table: table, context: tree.context, path: "f")
        #expect(try tree.vfs.lookup("f", from: start, context: tree.context).inode.attributes().size == 4)
        let file = try tree.open("/tmp/d/f", LinuxFile.readOnly)
        let fileFD = try table.install(file, closeOnExec: false)
        #expect(errnoOf { _ = try VirtualFilesystem.start(dirfd: fileFD, table: table, context: tree.context,
                                                          path: "x") } == .enotdir)
        #expect(errnoOf { _ = try VirtualFilesystem.start(dirfd: 99, table: table, context: tree.context,
                                                          path: "x") } == .ebadf)
        let empty = try VirtualFilesystem.start(dirfd: fileFD, table: table, context: tree.context, path: "",
                                                allowEmpty: true)
        #expect(try empty.inode.attributes().size == 4)
    }
}

@Suite struct DevfsTests {
    @Test func standardDevicesBehave() throws {
        let tree = try TestTree()
        let null = try tree.open("/dev/null", LinuxFile.readWrite)
        #expect(try null.read(count: 10, at: nil, waiter: nil).isEmpty)
        #expect(try null.write([1, 2, 3], at: nil, waiter: nil) == 3)
        let zero = try tree.open("/dev/zero", LinuxFile.readOnly)
        #expect(try zero.read(count: 4, at: nil, waiter: nil) == [0, 0, 0, 0])
        let full = try tree.open("/dev/full", LinuxFile.writeOnly)
        #expect(errnoOf { _ = try full.write([1], at: nil, waiter: nil) } == .enospc)
        let random = try tree.open("/dev/urandom", LinuxFile.readOnly)
        #expect(try random.read(count: 32, at: nil, waiter: nil).count == 32)
        let attributes = try tree.stat("/dev/null")
        #expect(attributes.type == .characterDevice)
        #expect(DeviceNumber.major(attributes.specialDevice) == 1)
        #expect(DeviceNumber.minor(attributes.specialDevice) == 3)
        #expect(try tree.vfs.readLink("/dev/stdout", from: tree.root, context: tree.context) == "/proc/self/fd/1")
        #expect(errnoOf { _ = try tree.stat("/dev/tty") } == .enoent)
    }
}

@Suite struct FDTableTests {
    @Test func lowestFreeNumberAndCloseOnExec() throws {
        let table = FDTable()
        let (reader, writer) = Pipe.makePair()
        #expect(try table.install(reader, closeOnExec: false) == 0)
        #expect(try table.install(writer, closeOnExec: true) == 1)
        #expect(try table.install(reader, closeOnExec: false, minimum: 10) == 10)
        try table.remove(0)
        #expect(try table.install(writer, closeOnExec: false) == 0)
        #expect(errnoOf { _ = try table.install(writer, closeOnExec: false, minimum: 5, limit: 5) } == .emfile)
        table.closeOnExec()
        #expect(errnoOf { _ = try table.get(1) } == .ebadf)
        #expect(errnoOf { try table.remove(1) } == .ebadf)
        #expect(table.descriptors.map(\.fd) == [0, 10])
    }
}

@Suite struct VFSSaveTests {
    @Test func treeFilesAndTablesSurviveSaveAndLoad() throws {
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        try tree.write("/tmp/d/f", "saved bytes")
        try tree.symlink("d/f", "/tmp/link")
        let table = FDTable()
        let file = try tree.open("/tmp/d/f", LinuxFile.readWrite)
        _ = try file.read(count: 6, at: nil, waiter: nil)
        _ = try table.install(file, closeOnExec: true)
        let (reader, writer) = Pipe.makePair()
        _ = try table.install(reader, closeOnExec: false)
        _ = try table.install(writer, closeOnExec: false)
        _ = try writer.write(Array("in the pipe".utf8), at: nil, waiter: nil)
        let holder = SaveHolder()
        holder.vfs = tree.vfs
        holder.table = table
        holder.fsContext = FSContext(root: tree.root)
        holder.memoryFile = try TestTree.memoryFile()

        var registry = vfsRegistry()
        registry.register(SaveHolder.self)
        let bytes = try StateEncoder.encode(root: holder, registry: registry)
        let loaded = try StateDecoder(registry: registry).decode(bytes, as: SaveHolder.self)
        // tmpfs data is memory: what pages.img would carry.
        for range in holder.memoryFile.usedRanges {
            let count = range.upperBound - range.lowerBound
            let from = try #require(holder.memoryFile.pointer(at: range.lowerBound, count: count))
            let to = try #require(loaded.memoryFile.pointer(at: range.lowerBound, count: count))
            to.copyMemory(from: from, byteCount: Int(count))
        }
        try loaded.vfs.attachMemoryFile(loaded.memoryFile)

        let root = try loaded.fsContext.root()
        let context = PathContext(root: root, workingDirectory: root, credentials: .root)
        let restoredFile = try loaded.table.get(0)
        #expect(loaded.table.entry(0)?.closeOnExec == true)
        #expect(String(decoding: try restoredFile.read(count: 100, at: nil, waiter: nil), as: UTF8.self) == "bytes")
        let viaLink = try loaded.vfs.open("/tmp/link", from: root, context: context, flags: LinuxFile.readOnly,
                                          mode: 0, umask: 0)
        #expect(try viaLink.read(count: 100, at: nil, waiter: nil) == Array("saved bytes".utf8))
        let pipeReader = try loaded.table.get(1)
        #expect(try pipeReader.read(count: 100, at: nil, waiter: nil) == Array("in the pipe".utf8))
        try loaded.table.remove(2)
        #expect(try pipeReader.read(count: 100, at: nil, waiter: nil).isEmpty)
        let null = try loaded.vfs.open("/dev/null", from: root, context: context, flags: LinuxFile.readOnly,
                                       mode: 0, umask: 0)
        #expect(try null.attributes().type == .characterDevice)
    }
}

/// A root object for save tests: what a kernel would hold.
final class SaveHolder: Savable, @unchecked Sendable {
    static let savedTypeName = "test.SaveHolder"
    var vfs = VirtualFilesystem()
    var table = FDTable()
    var fsContext = FSContext()
    var memoryFile = MemoryFile()

    init() {}

    func save(to sink: inout SaveSink) throws {
        try sink.save("vfs", vfs)
        try sink.save("table", table)
        try sink.save("fsContext", fsContext)
        try sink.save("memoryFile", memoryFile)
    }

    func load(from source: inout LoadSource) throws {
        vfs = try source.load("vfs")
        table = try source.load("table")
        fsContext = try source.load("fsContext")
        memoryFile = try source.load("memoryFile")
    }
}

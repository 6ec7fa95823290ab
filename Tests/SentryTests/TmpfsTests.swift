import State
import Testing
@testable import Sentry

@Suite struct TmpfsTests {
    @Test func writtenBytesReadBackWithSizeAndLinkCount() throws {
        let tree = try TestTree()
        try tree.write("/tmp/a", "hello\n")
        #expect(try tree.read("/tmp/a") == "hello\n")
        let attributes = try tree.stat("/tmp/a")
        #expect(attributes.size == 6)
        #expect(attributes.type == .regular)
        #expect(attributes.mode & 0o777 == 0o644)
        #expect(attributes.linkCount == 1)
    }

    @Test func appendWritesGoToTheEnd() throws {
        let tree = try TestTree()
        try tree.write("/tmp/log", "one\n")
        try tree.write("/tmp/log", "two\n", flags: LinuxFile.writeOnly | LinuxFile.append)
        #expect(try tree.read("/tmp/log") == "one\ntwo\n")
    }

    @Test func sparseTruncateReadsZerosAndShrinksCleanly() throws {
        let tree = try TestTree()
        let file = try tree.open("/tmp/sparse", LinuxFile.readWrite | LinuxFile.create)
        try file.truncate(to: 1 << 40)
        #expect(try file.attributes().size == 1 << 40)
        #expect(try file.read(count: 4, at: (1 << 40) - 2, waiter: nil) == [0, 0])
        _ = try file.write([1, 2, 3, 4, 5], at: 10, waiter: nil)
        try file.truncate(to: 12)
        try file.truncate(to: 20)
        #expect(try file.read(count: 20, at: 8, waiter: nil) == [0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func directoryErrorsFollowLinux() throws {
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        try tree.write("/tmp/d/f", "x")
        let context = tree.context, root = tree.root, vfs = tree.vfs
        #expect(errnoOf { try tree.mkdir("/tmp/d") } == .eexist)
        #expect(errnoOf { try tree.mkdir("/tmp/missing/d") } == .enoent)
        #expect(errnoOf { try tree.mkdir("/tmp/d/f/g") } == .enotdir)
        #expect(errnoOf { try vfs.remove("/tmp/d", from: root, context: context, directory: true) } == .enotempty)
        #expect(errnoOf { try vfs.remove("/tmp/d", from: root, context: context, directory: false) } == .eisdir)
        #expect(errnoOf { try vfs.remove("/tmp/d/f", from: root, context: context, directory: true) } == .enotdir)
        #expect(errnoOf { try vfs.remove("/tmp/d/.", from: root, context: context, directory: true) } == .einval)
        #expect(errnoOf { try vfs.remove("/tmp/d/..", from: root, context: context, directory: true) }
            == .enotempty)
        #expect(errnoOf { try vfs.remove("/tmp", from: root, context: context, directory: true) } == .ebusy)
        #expect(errnoOf { try vfs.remove("/tmp/d/f/", from: root, context: context, directory: false) } == .enotdir)
        #expect(errnoOf { _ = try tree.open("/tmp/d/f/", LinuxFile.readOnly) } == .enotdir)
        #expect(errnoOf { _ = try tree.open("/tmp/d", LinuxFile.writeOnly) } == .eisdir)
        #expect(errnoOf { _ = try tree.open("/tmp/d/f", LinuxFile.readOnly | LinuxFile.directory) } == .enotdir)
        #expect(errnoOf { _ = try tree.open("/tmp/d/f", LinuxFile.create | LinuxFile.exclusive) } == .eexist)
        #expect(errnoOf { _ = try tree.open("/tmp/new/", LinuxFile.create | LinuxFile.writeOnly) } == .eisdir)
        try vfs.remove("/tmp/d/f", from: root, context: context, directory: false)
        try vfs.remove("/tmp/d", from: root, context: context, directory: true)
        #expect(errnoOf { _ = try tree.stat("/tmp/d") } == .enoent)
    }

    /// `rm -r` reads a batch of entries, removes them, reads on: no entry
    /// may be skipped because the ones before it are gone.
    @Test func removingWhatWasReadSkipsNothing() throws {
        let tree = try TestTree()
        try tree.mkdir("/tmp/d")
        let names = (0..<300).map { "file-with-a-longish-name-\($0)" }
        for name in names { try tree.write("/tmp/d/" + name, "x") }
        let directory = try tree.open("/tmp/d", LinuxFile.readOnly | LinuxFile.directory)
        var seen: [String] = []
        while true {
            let batch = try directory.readDirectory(capacity: 2048)
            if batch.isEmpty { break }
            var offset = 0
            while offset + 19 < batch.count {
                let length = Int(batch[offset + 16]) | Int(batch[offset + 17]) << 8
                let name = String(decoding: batch[(offset + 19)..<(offset + length)].prefix { $0 != 0 }, as: UTF8.self)
                offset += length
                guard name != "." && name != ".." else { continue }
                seen.append(name)
                try tree.vfs.remove("/tmp/d/" + name, from: tree.root, context: tree.context, directory: false)
            }
        }
        #expect(seen.sorted() == names.sorted())
        #expect(try tree.names("/tmp/d") == [".", ".."])
        _ = try directory.seek(0, whence: LinuxFile.seekSet)
        try tree.write("/tmp/d/new", "x")
        #expect(try directory.readDirectory(capacity: 2048).count > 0, "rewinddir lists afresh")
    }

    @Test func listingShowsDotsThenNamesInOrder() throws {
        let tree = try TestTree()
        try tree.write("/tmp/b", "")
        try tree.write("/tmp/a", "")
        try tree.mkdir("/tmp/c")
        #expect(try tree.names("/tmp") == [".", "..", "a", "b", "c"])
        #expect(try tree.names("/") == [".", "..", "dev", "tmp"])
    }

    @Test func hardLinksShareTheInode() throws {
        let tree = try TestTree()
        try tree.write("/tmp/a", "data")
        let existing = try tree.vfs.lookup("/tmp/a", from: tree.root, context: tree.context)
        try tree.vfs.makeLink(to: existing, at: "/tmp/b", from: tree.root, context: tree.context)
        #expect(try tree.stat("/tmp/a").linkCount == 2)
        #expect(try tree.stat("/tmp/a").inodeNumber == tree.stat("/tmp/b").inodeNumber)
        try tree.vfs.remove("/tmp/a", from: tree.root, context: tree.context, directory: false)
        #expect(try tree.read("/tmp/b") == "data")
        #expect(try tree.stat("/tmp/b").linkCount == 1)
        let directory = try tree.vfs.lookup("/tmp", from: tree.root, context: tree.context)
        #expect(errnoOf { try tree.vfs.makeLink(to: directory, at: "/tmp/x", from: tree.root, context: tree.context) }
            == .eperm)
        #expect(errnoOf { try tree.vfs.makeLink(to: existing, at: "/x", from: tree.root, context: tree.context) }
            == .exdev)
    }

    @Test func renameReplacesMovesAndRefusesLoops() throws {
        let tree = try TestTree()
        let vfs = tree.vfs, root = tree.root, context = tree.context
        try tree.write("/tmp/a", "A")
        try tree.write("/tmp/b", "B")
        try vfs.rename("/tmp/a", from: root, to: "/tmp/b", from: root, context: context, flags: 0)
        #expect(try tree.read("/tmp/b") == "A")
        #expect(errnoOf { _ = try tree.stat("/tmp/a") } == .enoent)
        try tree.mkdir("/tmp/d")
        try tree.mkdir("/tmp/d/e")
        #expect(errnoOf { try vfs.rename("/tmp/d", from: root, to: "/tmp/d/e/f", from: root, context: context,
                                         flags: 0) } == .einval)
        #expect(errnoOf { try vfs.rename("/tmp/b", from: root, to: "/tmp/d", from: root, context: context,
                                         flags: 0) } == .eisdir)
        #expect(errnoOf { try vfs.rename("/tmp/d/e", from: root, to: "/tmp/b", from: root, context: context,
                                         flags: 0) } == .enotdir)
        #expect(errnoOf { try vfs.rename("/tmp/b", from: root, to: "/tmp/d/e", from: root, context: context,
                                         flags: LinuxFile.renameNoReplace) } == .eexist)
        #expect(errnoOf { try vfs.rename("/tmp/b", from: root, to: "/b", from: root, context: context,
                                         flags: 0) } == .exdev)
        try vfs.rename("/tmp/b", from: root, to: "/tmp/d/e", from: root, context: context,
                       flags: LinuxFile.renameExchange)
        #expect(try tree.stat("/tmp/b").type == .directory)
        #expect(try tree.read("/tmp/d/e") == "A")
        try vfs.rename("/tmp/b", from: root, to: "/tmp/d/moved", from: root, context: context, flags: 0)
        #expect(try tree.stat("/tmp/d").linkCount == 3)
        #expect(try tree.stat("/tmp").linkCount == 3)
    }

    @Test func stickyDirectoryProtectsOthersFiles() throws {
        var tree = try TestTree()
        try tree.write("/tmp/roots", "")
        tree.credentials = .user(uid: 1000, gid: 1000)
        #expect(errnoOf { try tree.vfs.remove("/tmp/roots", from: tree.root, context: tree.context, directory: false) }
            == .eperm)
        try tree.write("/tmp/mine", "")
        #expect(try tree.stat("/tmp/mine").uid == 1000)
        try tree.vfs.remove("/tmp/mine", from: tree.root, context: tree.context, directory: false)
        #expect(errnoOf { try tree.write("/made-by-user", "") } == .eacces)
        #expect(errnoOf { _ = try tree.open("/tmp/roots", LinuxFile.writeOnly) } == .eacces)
    }

    @Test func permissionChangesFollowOwnership() throws {
        var tree = try TestTree()
        try tree.write("/tmp/f", "")
        let location = try tree.vfs.lookup("/tmp/f", from: tree.root, context: tree.context)
        try tree.vfs.setAttributes(of: location, change: AttributeChange(mode: 0o600), context: tree.context)
        #expect(try tree.stat("/tmp/f").mode & 0o7777 == 0o600)
        tree.credentials = .user(uid: 1000, gid: 1000)
        #expect(errnoOf { try tree.vfs.setAttributes(of: location, change: AttributeChange(mode: 0o777),
                                                     context: tree.context) } == .eperm)
        #expect(errnoOf { try tree.vfs.setAttributes(of: location, change: AttributeChange(uid: 1000),
                                                     context: tree.context) } == .eperm)
        #expect(errnoOf { _ = try tree.read("/tmp/f") } == .eacces)
    }
}

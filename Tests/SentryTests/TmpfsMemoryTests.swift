import Foundation
import State
import Testing
@testable import Sentry

/// tmpfs data lives in the MemoryFile and is bounded by the mount's
/// `size=`/`nr_inodes=` and the container's memory limit.
@Suite(.serialized) struct TmpfsMemoryTests {
    /// A tree whose /tmp is a tmpfs with these limits, over a MemoryFile of its own.
    static func tree(size: UInt64? = nil, inodes: UInt64? = nil, memoryLimit: UInt64 = .max) throws
        -> (VirtualFilesystem, PathContext, MemoryFile) {
        let vfs = VirtualFilesystem()
        let root = vfs.mountRoot(TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber(), rootMode: 0o755))
        try vfs.mount(TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber(), sizeLimit: size,
                                           inodeLimit: inodes), at: "/tmp")
        let memoryFile = try MemoryFile.create(capacity: 1 << 32)
        memoryFile.limit = memoryLimit
        try vfs.attachMemoryFile(memoryFile)
        return (vfs, PathContext(root: root, workingDirectory: root, credentials: .root), memoryFile)
    }

    static func create(_ vfs: VirtualFilesystem, _ context: PathContext, _ path: String) throws(SyscallError)
        -> FileDescription {
        try vfs.open(path, from: context.root, context: context,
                     flags: LinuxFile.readWrite | LinuxFile.create, mode: 0o644, umask: 0)
    }

    @Test func fileDataIsMemoryFilePagesAndTruncateFreesThem() throws {
        let (vfs, context, memoryFile) = try Self.tree()
        let file = try Self.create(vfs, context, "/tmp/f")
        let before = memoryFile.usedBytes
        let bytes = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(try file.write(bytes, at: 0, waiter: nil) == bytes.count)
        #expect(memoryFile.usedBytes - before == 1 << 20)
        #expect(try file.read(count: 1 << 20, at: 0, waiter: nil) == bytes)
        #expect(try file.attributes().blocks == (1 << 20) / 512)
        try file.location?.dentry.inode.setAttributes(AttributeChange(size: 4097))
        #expect(memoryFile.usedBytes - before == 2 * 4096)
        #expect(try file.read(count: 8192, at: 0, waiter: nil) == Array(bytes.prefix(4097)))
    }

    @Test func filesNearTheLargestSizeTruncateAndWriteWithoutOverflow() throws {
        let (vfs, context, _) = try Self.tree()
        let file = try Self.create(vfs, context, "/tmp/f")
        #expect(try file.write([1], at: 0, waiter: nil) == 1)
        try file.truncate(to: .max)
        #expect(try file.write([2, 3], at: .max - 2, waiter: nil) == 2)
        try file.truncate(to: .max - 1)
        #expect(try file.read(count: 4, at: .max - 3, waiter: nil) == [0, 2])
        #expect(errnoOf { _ = try file.write([4, 5], at: .max - 1, waiter: nil) } == .efbig)
    }

    /// A checkpoint saves the bytes with the memory (pages.img), not in the object graph.
    @Test func theObjectGraphDoesNotCarryFileData() throws {
        let (vfs, context, memoryFile) = try Self.tree()
        let file = try Self.create(vfs, context, "/tmp/f")
        #expect(try file.write([UInt8](repeating: 7, count: 1 << 20), at: 0, waiter: nil) == 1 << 20)
        let holder = SaveHolder()
        holder.vfs = vfs
        holder.memoryFile = memoryFile
        var registry = vfsRegistry()
        registry.register(SaveHolder.self)
        let bytes = try StateEncoder.encode(root: holder, registry: registry)
        #expect(bytes.count < 64 * 1024, "\(bytes.count) bytes of state for a 1 MiB file")
        #expect(memoryFile.usedRanges.reduce(0) { $0 + $1.count } == 1 << 20)
    }

    @Test func writesStopAtTheMountSizeWithENOSPC() throws {
        let (vfs, context, _) = try Self.tree(size: 64 * 1024)
        let file = try Self.create(vfs, context, "/tmp/f")
        let block = [UInt8](repeating: 1, count: 48 * 1024)
        #expect(try file.write(block, at: nil, waiter: nil) == block.count)
        #expect(try file.write(block, at: nil, waiter: nil) == 16 * 1024, "a short write up to the size")
        #expect(errnoOf { _ = try file.write(block, at: nil, waiter: nil) } == .enospc)
        // Rewriting pages the file has takes no more space.
        #expect(try file.write(block, at: 0, waiter: nil) == block.count)
        let statistics = try #require(vfs.mounts.last?.filesystem).statistics()
        #expect(statistics.blocks == 16 && statistics.freeBlocks == 0)
    }

    @Test func creationsStopAtTheMountInodeCountWithENOSPC() throws {
        let (vfs, context, _) = try Self.tree(inodes: 3)
        _ = try Self.create(vfs, context, "/tmp/a")
        try vfs.makeDirectory("/tmp/d", from: context.root, context: context, mode: 0o755, umask: 0)
        #expect(errnoOf { _ = try Self.create(vfs, context, "/tmp/b") } == .enospc)
        try vfs.remove("/tmp/a", from: context.root, context: context, directory: false)
        _ = try Self.create(vfs, context, "/tmp/b")
    }

    @Test func theMemoryLimitRefusesPagesAndNotesTheFailure() throws {
        let (vfs, context, memoryFile) = try Self.tree(memoryLimit: 1 << 20)
        let file = try Self.create(vfs, context, "/tmp/f")
        let block = [UInt8](repeating: 1, count: 1 << 20)
        #expect(!memoryFile.takeChargeFailure())
        #expect(try file.write(block, at: 0, waiter: nil) == 1 << 20)
        #expect(errnoOf { _ = try file.write(block, at: 1 << 20, waiter: nil) } == .enomem)
        #expect(memoryFile.takeChargeFailure())
        #expect(!memoryFile.takeChargeFailure())
        #expect(memoryFile.usedBytes == 1 << 20)
    }

    /// Images of format 1 and 2 kept tmpfs bytes in state.img: they load into the MemoryFile.
    @Test(arguments: ["tmpfs-v1", "tmpfs-v2"])
    func goldenImagesTmpfsDataMovesIntoTheMemoryFile(name: String) throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/snapshots/" + name).path
        let reader = try ImageReader(directory: directory)
        let kernel = try StateDecoder(registry: SentryStateTypes.registry).decode(try reader.readState(),
                                                                                  as: Kernel.self)
        let before = kernel.memoryFile.usedBytes
        let tmpfs = try #require(kernel.vfs?.mounts.first { $0.filesystem is TmpfsFilesystem && $0.target == "/tmp" })
        let inode = try #require(tmpfs.root.children["kept"]?.inode as? TmpfsRegularFile)
        #expect(String(decoding: try inode.read(count: 100, at: 0), as: UTF8.self) == "written before\n")
        #expect(try inode.attributes().blocks == 8)
        #expect(before >= Page.size, "the page was allocated when the image loaded")
    }
}

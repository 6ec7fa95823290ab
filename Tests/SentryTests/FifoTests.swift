import Glibc
import Synchronization
import Testing
@testable import Sentry

/// FIFO opens as fs/pipe.c's fifo_open: what a single-process end-to-end
/// fixture cannot show, a blocking open waiting for its partner on another thread.
@Suite struct FifoTests {
    static func makeFifo(_ tree: TestTree, _ path: String) throws {
        try tree.vfs.makeNode(path, from: tree.root, context: tree.context, mode: FileType.fifo.rawValue | 0o644,
                              umask: 0o022, mayMakeDevices: false)
    }

    @Test func aBlockingReadOnlyOpenWaitsForAWriter() throws {
        let tree = try TestTree()
        try Self.makeFifo(tree, "/tmp/fifo")
        let opened = Mutex(false)
        let reader = try tree.open("/tmp/fifo", LinuxFile.readOnly)
        let thread = HostThread {
            if (try? reader.waitUntilOpen(waiter: Waiter())) != nil { opened.withLock { $0 = true } }
        }
        usleep(50_000)
        #expect(!opened.withLock { $0 }, "no writer yet")
        let writer = try tree.open("/tmp/fifo", LinuxFile.writeOnly)
        try writer.waitUntilOpen(waiter: Waiter())
        thread.join()
        #expect(opened.withLock { $0 })
        #expect(try writer.write(Array("hi".utf8), at: nil, waiter: nil) == 2)
        #expect(try reader.read(count: 8, at: nil, waiter: nil) == Array("hi".utf8))
    }

    @Test func anInterruptedOpenRestartsAndLeavesNoReaderBehind() throws {
        let tree = try TestTree()
        try Self.makeFifo(tree, "/tmp/fifo")
        let waiter = Waiter()
        let outcome = Mutex<SyscallError?>(nil)
        let reader = try tree.open("/tmp/fifo", LinuxFile.readOnly)
        let thread = HostThread {
            let error = errnoOf { try reader.completeOpen(waiter: waiter) { _ in } }
            outcome.withLock { $0 = error }
        }
        usleep(50_000)
        waiter.interrupt()
        thread.join()
        #expect(outcome.withLock { $0 } == .erestartsys)
        #expect(errnoOf { _ = try tree.open("/tmp/fifo", LinuxFile.writeOnly | LinuxFile.nonBlocking) } == .enxio)
    }

    @Test func aBlockingWriteOnlyOpenWaitsForAReader() throws {
        let tree = try TestTree()
        try Self.makeFifo(tree, "/tmp/fifo")
        let opened = Mutex(false)
        let writer = try tree.open("/tmp/fifo", LinuxFile.writeOnly)
        let thread = HostThread {
            if (try? writer.waitUntilOpen(waiter: Waiter())) != nil { opened.withLock { $0 = true } }
        }
        usleep(50_000)
        #expect(!opened.withLock { $0 }, "no reader yet")
        _ = try tree.open("/tmp/fifo", LinuxFile.readOnly | LinuxFile.nonBlocking)
        thread.join()
        #expect(opened.withLock { $0 })
    }

    /// An open whose FD cannot be installed (EMFILE) is released as a
    /// close: the reader it counted is gone, so a non-blocking writer gets ENXIO.
    @Test func anOpenRefusedAnFDLeavesNoReaderBehind() throws {
        let tree = try TestTree()
        try Self.makeFifo(tree, "/tmp/fifo")
        let reader = try tree.open("/tmp/fifo", LinuxFile.readOnly | LinuxFile.nonBlocking)
        #expect(errnoOf { try reader.completeOpen(waiter: nil) { _ throws(SyscallError) in throw .emfile } } == .emfile)
        #expect(errnoOf { _ = try tree.open("/tmp/fifo", LinuxFile.writeOnly | LinuxFile.nonBlocking) } == .enxio)
    }
}

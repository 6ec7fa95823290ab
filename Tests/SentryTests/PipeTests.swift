import Glibc
import State
import Synchronization
import Testing
@testable import Sentry

@Suite struct PipeTests {
    @Test func bytesFlowAndEOFFollowsTheLastWriter() throws {
        let (reader, writer) = Pipe.makePair()
        #expect(try writer.write(Array("abc".utf8), at: nil, waiter: nil) == 3)
        #expect(try reader.readableByteCount() == 3)
        #expect(try reader.read(count: 2, at: nil, waiter: nil) == Array("ab".utf8))
        #expect(try reader.read(count: 10, at: nil, waiter: nil) == Array("c".utf8))
        writer.retainReference()
        writer.releaseReference()
        #expect(try reader.read(count: 10, at: nil, waiter: Waiter()).isEmpty)
    }

    @Test func writingWithoutReadersIsEPIPE() throws {
        let (reader, writer) = Pipe.makePair()
        reader.retainReference()
        reader.releaseReference()
        #expect(errnoOf { _ = try writer.write([1], at: nil, waiter: nil) } == .epipe)
    }

    @Test func emptyNonBlockingReadIsEAGAINAndPositionalIsESPIPE() throws {
        let (reader, writer) = Pipe.makePair(flags: LinuxFile.nonBlocking)
        #expect(errnoOf { _ = try reader.read(count: 1, at: nil, waiter: Waiter()) } == .eagain)
        #expect(errnoOf { _ = try reader.read(count: 1, at: 0, waiter: nil) } == .espipe)
        #expect(errnoOf { _ = try reader.seek(0, whence: LinuxFile.seekSet) } == .espipe)
        #expect(errnoOf { _ = try writer.read(count: 1, at: nil, waiter: nil) } == .ebadf)
        #expect(try reader.attributes().type == .fifo)
    }

    @Test func smallWritesAreAtomicAndLargeOnesFillTheBuffer() throws {
        let (reader, writer) = Pipe.makePair(flags: LinuxFile.nonBlocking)
        let almostFull = [UInt8](repeating: 7, count: LinuxFile.pipeDefaultCapacity - 100)
        #expect(try writer.write(almostFull, at: nil, waiter: nil) == almostFull.count)
        #expect(errnoOf { _ = try writer.write([UInt8](repeating: 1, count: 200), at: nil, waiter: nil) } == .eagain)
        #expect(try writer.write([UInt8](repeating: 1, count: 5000), at: nil, waiter: nil) == 100)
        #expect(errnoOf { _ = try writer.write([1], at: nil, waiter: nil) } == .eagain)
        #expect(try reader.readableByteCount() == LinuxFile.pipeDefaultCapacity)
    }

    @Test func blockedReadWakesWhenAWriterWrites() async throws {
        let (reader, writer) = Pipe.makePair()
        let result = Mutex<[UInt8]?>(nil)
        let thread = HostThread {
            let bytes = try? reader.read(count: 10, at: nil, waiter: Waiter())
            result.withLock { $0 = bytes }
        }
        usleep(50_000)
        #expect(result.withLock { $0 } == nil)
        _ = try writer.write(Array("wake".utf8), at: nil, waiter: nil)
        thread.join()
        #expect(result.withLock { $0 } == Array("wake".utf8))
    }

    @Test func blockedReadIsInterruptedWithERESTARTSYS() throws {
        let (reader, _) = Pipe.makePair()
        let waiter = Waiter()
        let outcome = Mutex<SyscallError?>(nil)
        let thread = HostThread {
            let error = errnoOf { _ = try reader.read(count: 10, at: nil, waiter: waiter) }
            outcome.withLock { $0 = error }
        }
        usleep(50_000)
        waiter.interrupt()
        thread.join()
        #expect(outcome.withLock { $0 } == .erestartsys)
        #expect(waiter.isInterrupted)
        waiter.clearInterrupt()
        #expect(!waiter.isInterrupted)
    }

    @Test func blockedLargeWriteReturnsWhatItWroteWhenInterrupted() throws {
        let (_, writer) = Pipe.makePair()
        let waiter = Waiter()
        let outcome = Mutex<Int?>(nil)
        let thread = HostThread {
            let count = try? writer.write([UInt8](repeating: 0, count: 100_000), at: nil, waiter: waiter)
            outcome.withLock { $0 = count }
        }
        usleep(50_000)
        waiter.interrupt()
        thread.join()
        #expect(outcome.withLock { $0 } == LinuxFile.pipeDefaultCapacity)
    }

    @Test func capacityChangesRoundUpAndRefuseShrinkingBelowContents() throws {
        let (_, writer) = Pipe.makePair()
        #expect(try writer.pipe.setCapacity(5000, privileged: false) == 8192)
        _ = try writer.write([UInt8](repeating: 0, count: 6000), at: nil, waiter: nil)
        #expect(errnoOf { _ = try writer.pipe.setCapacity(4096, privileged: false) } == .ebusy)
        #expect(errnoOf { _ = try writer.pipe.setCapacity(1 << 21, privileged: false) } == .eperm)
    }

    /// A capacity only a privileged F_SETPIPE_SZ may set survives a save and load.
    @Test func privilegedCapacityRoundTripsThroughAnImage() throws {
        let (_, writer) = Pipe.makePair()
        #expect(try writer.pipe.setCapacity(1 << 21, privileged: true) == 1 << 21)
        let image = try StateEncoder.encode(root: writer.pipe, registry: vfsRegistry())
        let loaded = try StateDecoder(registry: vfsRegistry()).decode(image, as: Pipe.self)
        #expect(loaded.bufferCapacity == 1 << 21)
    }
}

/// A plain pthread for tests that block, kept off Swift's cooperative pool.
final class HostThread: @unchecked Sendable { // `handle` is written once before join
    private var handle = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body))
        pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque())
    }

    func join() {
        pthread_join(handle, nil)
    }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}

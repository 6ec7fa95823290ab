import State
import Testing
@testable import Sentry

/// Signalfds in images from before they named their kernel.
@Suite struct SignalFileImageTests {
    /// An image from before `kernel` names the signalfd's maker ("target").
    /// Objects run afterLoad in reverse ID order, so an epoll instance
    /// watching the signalfd registers its item on it before the signalfd
    /// has taken the kernel from its maker: the registration must still
    /// reach the kernel's signal waiters, or signals never wake the epoll.
    @Test func anOlderImagesSignalfdInAnEpollStillHearsSignals() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        let signals = SignalFile(kernel: kernel, mask: SignalSet(rawValue: Signal.user1.mask), flags: 0)
        _ = try task.fdTable.install(signals, closeOnExec: false, limit: 64)
        let epoll = EpollFile(flags: 0)
        _ = try task.fdTable.install(epoll, closeOnExec: false, limit: 64)
        try epoll.add(signals, fd: 3, events: PollEvents.readable.rawValue, data: 0)
        #expect(!kernel.signalWaiters.isEmpty)

        let stream = try StateStream(bytes: try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry))
        let names = stream.typeNames
        let signalFile = try #require(stream.objects.indices.first { names[stream.objects[$0].typeIndex] == "signal.File" })
        let taskID = try #require(stream.objects.indices.first { names[stream.objects[$0].typeIndex] == "sentry.Task" }) + 1
        let epollID = try #require(stream.objects.indices.first { names[stream.objects[$0].typeIndex] == "epoll.File" }) + 1
        #expect(epollID > signalFile + 1, "the epoll must run afterLoad first for this test")
        let kernelField = try #require(stream.fieldNames(ofType: stream.objects[signalFile].typeIndex).firstIndex(of: "kernel"))
        var values = stream.objects[signalFile].values
        values[kernelField] = .object(UInt32(taskID))
        var bytes = try stream.encoded { $0 == signalFile ? values : nil }
        // In signal.File's schema only: the field's old name, "target" (as long as "kernel"),
        // and its kind, a Task (the kind's type name follows, after its length).
        let typeName = Array("signal.File".utf8), old = Array("kernel".utf8), new = Array("target".utf8)
        let typeAt = try #require(Self.find(typeName, in: bytes, from: 0))
        let fieldAt = try #require(Self.find(old, in: bytes, from: typeAt + typeName.count))
        bytes.replaceSubrange(fieldAt..<fieldAt + old.count, with: new)
        let kernelKind = [UInt8(13)] + Array("sentry.Kernel".utf8), taskKind = [UInt8(11)] + Array("sentry.Task".utf8)
        let kindAt = try #require(Self.find(kernelKind, in: bytes, from: fieldAt + new.count))
        #expect(kindAt <= fieldAt + new.count + 2, "the kind found is not the field's")
        bytes.replaceSubrange(kindAt..<kindAt + kernelKind.count, with: taskKind)

        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
        defer { loaded.memoryFile.release() }
        #expect(!loaded.signalWaiters.isEmpty, "the epoll item's entry never reached the kernel's signal waiters")
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
        return (start...(bytes.count - needle.count)).first { bytes[$0..<$0 + needle.count].elementsEqual(needle) }
    }
}

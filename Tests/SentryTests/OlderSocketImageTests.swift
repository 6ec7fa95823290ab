import State
import Testing
@testable import Sentry

/// Images from before each kernel named its loopback network, its count of
/// files in flight and its unix namespace (and its sockets and messages
/// named theirs): loaded, and then cycled as the save/restore test mode
/// does (save, load the image, discard the old kernel), each kernel and its
/// sockets keep to themselves, as a kernel of a newer image does.
@Suite struct OlderSocketImageTests {
    /// A listener of an older image, its kernel cycled once: a connect in the
    /// restored kernel reaches the restored listener, not the discarded one.
    @Test func aConnectReachesTheCycledListenerOfAnOlderImage() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        // A port of its own, outside the ephemeral range.
        let port = UInt16.random(in: 20000...30000)
        let address = InetAddress.encode(InetEndpoint.ipv4Loopback.with(port: port), family: SocketABI.AF_INET)
        let listenerFD = try Self.inetSocket(in: task)
        let listener = try #require(try task.fdTable.get(listenerFD) as? InetSocket)
        try listener.bind(address, task: task)
        try listener.listen(backlog: 4, task: task)

        let first = try Self.decode(try Self.olderImage(of: kernel))
        defer { first.memoryFile.release() }
        let restored = try Self.cycle(first)
        defer { restored.memoryFile.release() }
        let restoredTask = try #require(restored.pidNamespace.task(task.id))
        let discardedListener = try #require(try first.pidNamespace.task(task.id)?.fdTable.get(listenerFD) as? InetSocket)
        let restoredListener = try #require(try restoredTask.fdTable.get(listenerFD) as? InetSocket)
        let client = try #require(try restoredTask.fdTable.get(try Self.inetSocket(in: restoredTask)) as? InetSocket)
        // Without a waiter the connect is non-blocking: it joins a listener with room and says EINPROGRESS.
        #expect(errnoOf { try client.connect(address, task: restoredTask, waiter: nil) } == .einprogress)
        #expect(restoredListener.readiness(for: .readable).contains(.readable), "the restored listener has no connection")
        #expect(!discardedListener.readiness(for: .readable).contains(.readable), "the discarded kernel's listener took the connect")
    }

    /// Files in flight in an older image, received after its kernel was
    /// cycled twice, leave the count of files in flight: their sender can put
    /// as many in flight again (Linux's count under RLIMIT_NOFILE 64: 40,
    /// none once received, then 30 and 60).
    @Test func anOlderImagesFilesInFlightLeaveTheCountWhenReceivedAfterCycles() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        #expect(task.fileDescriptorLimit == 64 && !task.credentials.hasCapability(InFlightFiles.capSysResource))
        let (sender, receiver) = try Self.unixPair(in: task)
        let passed = try Self.unixSocket(in: task)
        try Self.send(over: sender, passing: Array(repeating: passed, count: 40), from: task)

        var current = try Self.decode(try Self.olderImage(of: kernel))
        for _ in 0..<2 {
            let next = try Self.cycle(current)
            current.memoryFile.release()
            current = next
        }
        defer { current.memoryFile.release() }
        let restoredTask = try #require(current.pidNamespace.task(task.id))
        let restoredReceiver = try #require(try restoredTask.fdTable.get(receiver) as? UnixSocket)
        let received = try restoredReceiver.receive(count: 1, flags: 0, waiter: nil)
        #expect(received.rights.count == 40)
        for file in received.rights { file.releaseReference() }
        for round in 1...2 {
            #expect(errnoOf { try Self.send(over: sender, passing: Array(repeating: passed, count: 30), from: restoredTask) }
                    == nil, "send \(round) of 30 files: the received files are still counted")
        }
    }

    /// An older image's kernel gets a loopback network, a count and a unix
    /// namespace of its own, which its sockets and messages share, and its
    /// next image saves them like a newer kernel's.
    @Test func anOlderImagesKernelAndSocketsShareTheKernelsOwnState() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        let (sender, _) = try Self.unixPair(in: task)
        try Self.send(over: sender, passing: [try Self.unixSocket(in: task)], from: task)

        let loaded = try Self.decode(try Self.olderImage(of: kernel))
        defer { loaded.memoryFile.release() }
        #expect(loaded.loopback !== kernel.loopback && loaded.inFlightFiles !== kernel.inFlightFiles)
        #expect(loaded.unixNamespace !== kernel.unixNamespace)
        let loadedTask = try #require(loaded.pidNamespace.task(task.id))
        let unix = try #require(try loadedTask.fdTable.get(sender) as? UnixSocket)
        #expect(unix.unixNamespace === loaded.unixNamespace)
        let image = try StateEncoder.encode(root: loaded, registry: SentryStateTypes.registry)
        let again = try Self.decode(image)
        defer { again.memoryFile.release() }
        let stream = try StateStream(bytes: image)
        let kernelObject = try #require(stream.objects.first { stream.typeNames[$0.typeIndex] == Kernel.savedTypeName })
        let fields = stream.fieldNames(ofType: kernelObject.typeIndex)
        for name in ["loopbackNextEphemeral", "inFlightFiles", "unixNamespace"] {
            #expect(kernelObject.values[try #require(fields.firstIndex(of: name))] != .null, "\(name) not saved")
        }
        let againTask = try #require(again.pidNamespace.task(task.id))
        #expect((try againTask.fdTable.get(sender) as? UnixSocket)?.unixNamespace === again.unixNamespace)
    }

    /// A socket that names no kernel in an image whose root is not a kernel
    /// has none to take: the load refuses it by name.
    @Test func aSocketOfNoKernelIsRefused() throws {
        let (kernel, _) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        let sockets: [any Savable] = [
            InetSocket(family: SocketABI.AF_INET, type: SocketABI.SOCK_STREAM, protocol: 0, flags: 0, kernel: kernel),
            UnixSocket(type: SocketABI.SOCK_STREAM, flags: 0, namespace: kernel.unixNamespace),
        ]
        for (socket, field) in zip(sockets, ["kernel", "unixNamespace"]) {
            let stream = try StateStream(bytes: try StateEncoder.encode(root: socket, registry: SentryStateTypes.registry))
            let root = Int(stream.rootID) - 1
            let fields = stream.fieldNames(ofType: stream.objects[root].typeIndex)
            var values = stream.objects[root].values
            values[try #require(fields.firstIndex(of: field))] = .null
            let older = try stream.encoded { $0 == root ? values : nil }
            do {
                _ = try StateDecoder(registry: SentryStateTypes.registry).decode(older)
                Issue.record("a socket of no kernel loaded")
            } catch {
                #expect("\(error)".contains(field) && "\(error)".contains("of no kernel"), "\(error)")
            }
        }
    }

    // MARK: Images

    /// `kernel`'s image as a build from before these fields wrote it: the
    /// kernel names no loopback cursor, count of files in flight or unix
    /// namespace, its inet sockets no kernel, its unix sockets no namespace
    /// and its messages no count (each field null, as a load of a missing one gives).
    static func olderImage(of kernel: Kernel) throws -> [UInt8] {
        let stream = try StateStream(bytes: try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry))
        let dropped: [String: Set<String>] = [
            Kernel.savedTypeName: ["loopbackNextEphemeral", "inFlightFiles", "unixNamespace"],
            InetSocket.savedTypeName: ["kernel"],
            UnixSocket.savedTypeName: ["unixNamespace"],
            SocketMessage.savedTypeName: ["account"],
        ]
        func older(_ value: StateValue) -> StateValue {
            switch value {
            case .array(let elements): .array(elements.map(older))
            case .map(let keys, let values): .map(keys: keys, values: values.map(older))
            case .record(let typeIndex, let values): .record(typeIndex: typeIndex, values: fields(typeIndex, values))
            case .enumCase(let name, let payload): .enumCase(name, payload: payload.map(older))
            default: value
            }
        }
        func fields(_ typeIndex: Int, _ values: [StateValue]) -> [StateValue] {
            let drop = dropped[stream.typeNames[typeIndex]] ?? []
            return zip(stream.fieldNames(ofType: typeIndex), values).map { drop.contains($0) ? .null : older($1) }
        }
        return try stream.encoded { fields(stream.objects[$0].typeIndex, stream.objects[$0].values) }
    }

    static func decode(_ bytes: [UInt8]) throws -> Kernel {
        try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
    }

    /// One cycle of the save/restore test mode: `kernel` saved, a kernel
    /// loaded from its image, then `kernel` discarded.
    static func cycle(_ kernel: Kernel) throws -> Kernel {
        let restored = try decode(try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry))
        kernel.discard()
        return restored
    }

    // MARK: Sockets

    private static func inetSocket(in task: Task) throws -> Int32 {
        try #require(Int32(exactly: try SocketSyscalls.socket(task, SyscallArguments(UInt64(SocketABI.AF_INET),
                                                                                    UInt64(SocketABI.SOCK_STREAM)))))
    }

    private static func unixSocket(in task: Task) throws -> Int32 {
        try #require(Int32(exactly: try SocketSyscalls.socket(task, SyscallArguments(UInt64(SocketABI.AF_UNIX),
                                                                                    UInt64(SocketABI.SOCK_STREAM)))))
    }

    /// socketpair(2), its two numbers written below the task's stack pointer.
    private static func unixPair(in task: Task) throws -> (Int32, Int32) {
        let numbers = task.registers.rsp - 64
        _ = try SocketSyscalls.socketpair(task, SyscallArguments(UInt64(SocketABI.AF_UNIX), UInt64(SocketABI.SOCK_STREAM),
                                                                 0, numbers))
        let both = try task.copyIn(UInt64.self, from: numbers)
        return (Int32(truncatingIfNeeded: both), Int32(truncatingIfNeeded: both >> 32))
    }

    /// One byte with the files at `fds` (SCM_RIGHTS), sent over the socket at `fd`.
    private static func send(over fd: Int32, passing fds: [Int32], from task: Task) throws {
        let socket = try #require(try task.fdTable.get(fd) as? UnixSocket)
        let message = OutgoingMessage(data: [0x63], rights: try fds.map { try task.fdTable.getRetained($0) })
        #expect(try socket.send(message, task: task, waiter: nil) == 1)
    }
}

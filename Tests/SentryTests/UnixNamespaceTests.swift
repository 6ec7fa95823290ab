import Glibc
import State
import Testing
@testable import Sentry

/// Each kernel's unix sockets live apart, as each container's network
/// namespace's do on Linux: the abstract names and the garbage collector's
/// list of sockets holding files are the kernel's own, so two kernels in
/// one process (a restore beside the kernel it replaces, tests) never meet.
@Suite struct UnixNamespaceTests {
    /// A name one kernel holds is free in another, and a connect there
    /// reaches that kernel's listener.
    @Test func abstractNamesAreEachKernelsOwn() throws {
        let (first, firstTask) = try KernelState().makeKernel()
        let (second, secondTask) = try KernelState().makeKernel()
        defer {
            first.memoryFile.release()
            second.memoryFile.release()
        }
        let name = Self.abstractAddress("runsc-unix-namespace-\(UInt32.random(in: 0...UInt32.max))")
        let firstListener = try Self.socket(in: firstTask).socket
        try firstListener.bind(name, task: firstTask)
        try firstListener.listen(backlog: 4, task: firstTask)
        let secondListener = try Self.socket(in: secondTask).socket
        try secondListener.bind(name, task: secondTask)
        try secondListener.listen(backlog: 4, task: secondTask)
        let client = try Self.socket(in: secondTask).socket
        try client.connect(name, task: secondTask, waiter: nil)
        #expect(secondListener.readiness(for: .readable).contains(.readable))
        #expect(!firstListener.readiness(for: .readable).contains(.readable), "the other kernel's listener took the connect")
    }

    /// A loaded kernel and its sockets share the loaded namespace: a
    /// listener's abstract name is there again, and only there.
    @Test func aLoadedKernelsSocketsEnterItsNamespace() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        let name = Self.abstractAddress("runsc-unix-namespace-\(UInt32.random(in: 0...UInt32.max))")
        let listener = try Self.socket(in: task)
        try listener.socket.bind(name, task: task)
        try listener.socket.listen(backlog: 4, task: task)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry)
            .decode(try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry), as: Kernel.self)
        defer { loaded.memoryFile.release() }
        let loadedTask = try #require(loaded.pidNamespace.task(task.id))
        let loadedListener = try #require(try loadedTask.fdTable.get(listener.fd) as? UnixSocket)
        #expect(loaded.unixNamespace !== kernel.unixNamespace)
        #expect(loadedListener.unixNamespace === loaded.unixNamespace)
        let client = try Self.socket(in: loadedTask).socket
        try client.connect(name, task: loadedTask, waiter: nil)
        #expect(loadedListener.readiness(for: .readable).contains(.readable))
        #expect(!listener.socket.readiness(for: .readable).contains(.readable))
    }

    /// A kernel's collection is not held back by another kernel's sockets
    /// with files in flight: with 64 of them elsewhere, a cycle of two
    /// sockets each passed over itself and closed is collected at the next
    /// release of a unix socket in its own kernel, as with none elsewhere.
    @Test func aCollectionCountsOnlyItsOwnKernelsSockets() throws {
        let (busy, busyTask) = try KernelState().makeKernel()
        let (kernel, task) = try KernelState().makeKernel()
        defer {
            busy.memoryFile.release()
            kernel.memoryFile.release()
        }
        busyTask.threadGroup?.limits[.nofile] = Limits.Limit(soft: 1024, hard: 1024)
        for _ in 0..<64 {
            let (sender, receiver) = try Self.pair(in: busyTask)
            try Self.send(over: sender.socket, passing: receiver.fd, from: busyTask)
        }
        let (first, second) = try Self.pair(in: task)
        try Self.send(over: first.socket, passing: first.fd, from: task)
        try Self.send(over: second.socket, passing: second.fd, from: task)
        try task.fdTable.remove(first.fd)
        try task.fdTable.remove(second.fd)
        #expect(!first.socket.receiveQueue.filesInFlight.isEmpty)
        try task.fdTable.remove(try Self.socket(in: task).fd)
        #expect(first.socket.receiveQueue.filesInFlight.isEmpty, "the cycle was not collected")
        #expect(second.socket.receiveQueue.filesInFlight.isEmpty)
    }

    /// sockaddr_un of abstract name `name`.
    private static func abstractAddress(_ name: String) -> [UInt8] {
        [UInt8(truncatingIfNeeded: SocketABI.AF_UNIX), 0, 0] + Array(name.utf8)
    }

    private static func socket(in task: Task) throws -> (fd: Int32, socket: UnixSocket) {
        let fd = try Int32(exactly: SocketSyscalls.socket(task, SyscallArguments(UInt64(SocketABI.AF_UNIX),
                                                                                  UInt64(SocketABI.SOCK_STREAM))))
        let number = try #require(fd)
        return (number, try #require(try task.fdTable.get(number) as? UnixSocket))
    }

    /// socketpair(2), its two numbers written below the task's stack pointer.
    private static func pair(in task: Task) throws -> ((fd: Int32, socket: UnixSocket), (fd: Int32, socket: UnixSocket)) {
        let numbers = task.registers.rsp - 64
        _ = try SocketSyscalls.socketpair(task, SyscallArguments(UInt64(SocketABI.AF_UNIX), UInt64(SocketABI.SOCK_STREAM),
                                                                 0, numbers))
        let both = try task.copyIn(UInt64.self, from: numbers)
        let first = Int32(truncatingIfNeeded: both), second = Int32(truncatingIfNeeded: both >> 32)
        return ((first, try #require(try task.fdTable.get(first) as? UnixSocket)),
                (second, try #require(try task.fdTable.get(second) as? UnixSocket)))
    }

    /// One byte with the file at `fd` (SCM_RIGHTS).
    private static func send(over socket: UnixSocket, passing fd: Int32, from task: Task) throws {
        let message = OutgoingMessage(data: [0x63], rights: [try task.fdTable.getRetained(fd)])
        #expect(try socket.send(message, task: task, waiter: nil) == 1)
    }
}

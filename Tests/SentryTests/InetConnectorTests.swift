import Testing
@testable import Sentry

/// Loopback TCP connects waiting for room in a listener's backlog.
@Suite struct InetConnectorTests {
    /// Non-blocking connects to a full listener that never accepts, each
    /// closed at once, leave nothing behind (Linux keeps nothing of a closed
    /// SYN_SENT socket): the listener's connectors, saved in images, stay few.
    @Test func closedConnectsLeaveTheListenersConnectors() throws {
        let (kernel, task) = try KernelState().makeKernel()
        defer { kernel.memoryFile.release() }
        let listener = InetSocket(family: SocketABI.AF_INET, type: SocketABI.SOCK_STREAM, protocol: 0, flags: 0,
                                   kernel: kernel)
        listener.retainReference()
        defer { listener.releaseReference() }
        try listener.bind(InetAddress.encode(.ipv4Loopback, family: SocketABI.AF_INET), task: task)
        try listener.listen(backlog: 0, task: task)
        let address = try listener.localAddress()
        var admitted: [InetSocket] = []
        for round in 0..<50 {
            let client = InetSocket(family: SocketABI.AF_INET, type: SocketABI.SOCK_STREAM, protocol: 0,
                                    flags: LinuxFile.nonBlocking, kernel: kernel)
            client.retainReference()
            #expect(errnoOf { try client.connect(address, task: task, waiter: nil) } == .einprogress)
            if round == 0 {
                admitted.append(client)
            } else {
                client.releaseReference()
            }
        }
        #expect(listener.connectors.isEmpty)
        for client in admitted { client.releaseReference() }
    }
}


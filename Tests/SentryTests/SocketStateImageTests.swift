import State
import Testing
@testable import Sentry

/// Image checks of a connection's state.
@Suite struct SocketStateImageTests {
    /// Only loopback TCP waits among a listener's connectors: a unix socket
    /// saved as waiting to connect is refused by name.
    @Test func aUnixSocketWaitingToConnectIsRefused() throws {
        let socket = UnixSocket(type: SocketABI.SOCK_STREAM, flags: 0, namespace: UnixNamespace())
        socket.state = .connecting
        let bytes = try StateEncoder.encode(root: socket, registry: SentryStateTypes.registry)
        do {
            _ = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: UnixSocket.self)
            Issue.record("a unix socket waiting to connect loaded")
        } catch {
            #expect("\(error)".contains("state"), "\(error)")
            #expect("\(error)".contains("waiting to connect"), "\(error)")
        }
    }
}

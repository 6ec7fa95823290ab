import Glibc

/// The command line's side of a container's control socket: one request per connection.
public struct ControlClient: Sendable {
    /// The container's state directory, which holds the socket.
    public let directory: String
    /// Seconds to wait for the connection and for an answer (except to `.wait`, which blocks until exit).
    public var timeout: Int

    public init(directory: String, timeout: Int = 10) {
        self.directory = directory
        self.timeout = timeout
    }

    /// Sends `request` and returns the sandbox's answer.
    public func call(_ request: ControlRequest) throws(ControlError) -> ControlResponse {
        let fd = try ControlSocket.connect(in: directory, timeout: timeout)
        defer { close(fd) }
        try ControlSocket.send(request, on: fd)
        if request == .wait { try ControlSocket.setTimeout(fd, SO_RCVTIMEO, seconds: 0) }
        return try ControlSocket.receive(ControlResponse.self, on: fd)
    }
}

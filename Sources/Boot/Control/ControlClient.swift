import Glibc

/// The command line's side of a container's control socket: one request per connection.
public struct ControlClient: Sendable {
    /// The container's state directory, which holds the socket.
    public let directory: String
    /// Seconds to wait for the connection and for an answer (except to a wait, which blocks until exit).
    public var timeout: Int

    public init(directory: String, timeout: Int = 10) {
        self.directory = directory
        self.timeout = timeout
    }

    /// Sends `request`, with `files` passed to the sandbox, and returns its answer.
    public func call(_ request: ControlRequest, files: [Int32] = []) throws(ControlError) -> ControlResponse {
        let fd = try ControlSocket.connect(in: directory, timeout: timeout)
        defer { close(fd) }
        try ControlSocket.send(request, on: fd, files: files)
        if request.waitsForExit { try ControlSocket.setTimeout(fd, SO_RCVTIMEO, seconds: 0) }
        return try ControlSocket.receive(ControlResponse.self, on: fd)
    }
}

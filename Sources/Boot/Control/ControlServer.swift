import Glibc
import Logging
import Synchronization

/// The sandbox's side of the control socket: a dedicated thread accepts, and
/// each connection gets a thread of its own, so a `wait` that blocks until the
/// container exits never holds up `state` or `kill`.
public final class ControlServer: Sendable {
    /// What the server does with a request: the answer, and what to do once it has been sent.
    public struct Reply: Sendable {
        public var response: ControlResponse
        public var afterSending: (@Sendable () -> Void)?

        public init(_ response: ControlResponse, afterSending: (@Sendable () -> Void)? = nil) {
            self.response = response
            self.afterSending = afterSending
        }
    }

    /// Handles a request and the descriptors sent with it, which it owns (and closes when it does not keep them).
    public typealias Handler = @Sendable (ControlRequest, [Int32]) -> Reply

    private let listener: Int32
    private let handler: Handler
    private let logger: Logger
    /// Set by `stop()`: the accept that fails next is the shutdown, not an error.
    private let stopping = Atomic(false)
    /// How long a client may take to send its request.
    static let requestTimeout = 10

    /// Listens in `directory` (mode 0600) and starts accepting.
    public init(directory: String, logger: Logger, handler: @escaping Handler) throws(ControlError) {
        listener = try ControlSocket.listen(in: directory)
        self.handler = handler
        self.logger = logger
        do {
            try ControlThread.detach(name: "control-accept") { [self] in acceptLoop() }
        } catch {
            close(listener)
            throw error
        }
    }

    /// Stops accepting (shutdown wakes the blocked accept).
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                let error = errno
                switch error {
                case EINTR, ECONNABORTED, EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    if error != EINTR && error != ECONNABORTED { usleep(10_000) }
                    continue
                default:
                    if !stopping.load(ordering: .sequentiallyConsistent) {
                        logger.error("control server stops accepting: \(String(cString: strerror(error)))")
                    }
                    close(listener)
                    return
                }
            }
            _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
            do {
                try ControlThread.detach(name: "control-conn") { [self] in serve(connection) }
            } catch {
                logger.warning("cannot serve a control connection: \(error)")
                close(connection)
            }
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        let reply: Reply
        var files: [Int32] = []
        do {
            try ControlSocket.setTimeout(connection, SO_RCVTIMEO, seconds: Self.requestTimeout)
            try ControlSocket.setTimeout(connection, SO_SNDTIMEO, seconds: Self.requestTimeout)
            let request = try ControlSocket.receive(ControlRequest.self, on: connection, files: &files)
            logger.debug("control request \(request.name)")
            reply = handler(request, files)
        } catch let error {
            for file in files { close(file) }
            let kind: ControlFailure.Kind = if case .versionMismatch = error { .unsupportedVersion } else { .badRequest }
            logger.debug("bad control request: \(error)")
            reply = Reply(.failure(ControlFailure(kind, error.description)))
        }
        do {
            try ControlSocket.send(reply.response, on: connection)
        } catch {
            logger.debug("cannot answer a control request: \(error)")
        }
        reply.afterSending?()
    }
}

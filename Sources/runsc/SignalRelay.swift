#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import State

/// Forwards the signals a foreground `runsc run` receives (Ctrl-C, `kill`) to
/// the container through the control socket. The sandbox is in its own
/// session, so a terminal's signals reach only us. The signals are blocked
/// before the sandbox is spawned (so none is lost or kills runsc in between)
/// and a dedicated pthread takes them with sigwait.
enum SignalRelay {
    static let forwarded: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Blocks the forwarded signals in this thread and every thread it starts later.
    static func block() {
        var set = signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts forwarding each blocked signal to `handler`, which runs on the relay thread.
    static func start(_ handler: @escaping @Sendable (Int32) -> Void) throws {
        let body = Body(handler)
        do {
            try HostThread.start(detached: true) { body.run() }
        } catch {
            throw RunscError("cannot start the signal forwarding thread: \(error)")
        }
    }

    private static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in forwarded { sigaddset(&set, signal) }
        return set
    }

    private final class Body {
        let handler: @Sendable (Int32) -> Void
        init(_ handler: @escaping @Sendable (Int32) -> Void) { self.handler = handler }

        func run() {
            var set = SignalRelay.signalSet()
            while true {
                var signal: Int32 = 0
                guard sigwait(&set, &signal) == 0 else { continue }
                handler(signal)
            }
        }
    }
}

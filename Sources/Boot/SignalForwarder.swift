import Glibc
import State
import Synchronization

/// Forwards signals sent to runsc (Ctrl-C, `kill`) to the container: they are
/// blocked in the calling thread, which every thread started afterwards
/// inherits, and a dedicated thread takes them with sigwait.
final class SignalForwarder: Sendable {
    private let signals: [Int32]
    private let stopped = Atomic<Bool>(false)
    private let thread: pthread_t
    private let previousMask: sigset_t

    init(signals: [Int32], _ handler: @escaping @Sendable (Int32) -> Void) throws(LoaderError) {
        self.signals = signals
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        var old = sigset_t()
        pthread_sigmask(SIG_BLOCK, &set, &old)
        previousMask = old
        let body = Body(set: set, handler: handler)
        do {
            thread = try HostThread.start { body.run() }
        } catch {
            var restore = old
            pthread_sigmask(SIG_SETMASK, &restore, nil)
            throw LoaderError("cannot start the signal forwarding thread: \(error)")
        }
        body.owner = self
    }

    /// Ends forwarding and restores the caller's signal mask.
    func stop() {
        stopped.store(true, ordering: .sequentiallyConsistent)
        if let first = signals.first { pthread_kill(thread, first) }
        pthread_join(thread, nil)
        var restore = previousMask
        pthread_sigmask(SIG_SETMASK, &restore, nil)
    }

    var isStopped: Bool { stopped.load(ordering: .sequentiallyConsistent) }

    private final class Body: @unchecked Sendable {
        let set: sigset_t
        let handler: @Sendable (Int32) -> Void
        /// Set right after the thread starts; read only by the thread.
        weak var owner: SignalForwarder?

        init(set: sigset_t, handler: @escaping @Sendable (Int32) -> Void) {
            self.set = set
            self.handler = handler
        }

        func run() {
            var waitSet = set
            while true {
                var signal: Int32 = 0
                guard sigwait(&waitSet, &signal) == 0 else { continue }
                if owner?.isStopped ?? false { return }
                handler(signal)
            }
        }
    }
}

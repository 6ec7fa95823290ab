import Glibc
import State

/// Detached pthreads for the control server: its loops block in accept and
/// recv, which must never happen on Swift concurrency's cooperative pool.
enum ControlThread {
    static func detach(name: String, _ body: @escaping @Sendable () -> Void) throws(ControlError) {
        do {
            try HostThread.start(detached: true, body)
        } catch {
            throw .io(operation: "start thread \(name)", errno: error.errno)
        }
    }
}

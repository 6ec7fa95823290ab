import CShim
import Glibc
import State
import Synchronization

/// Host FDs the Sentry waits on (the container's stdio: a host pipe or
/// terminal at 0-2): one host thread for the sandbox blocks in the host's
/// epoll_wait over all of them and announces what the host reports on each
/// FD's `WaitQueue`, so tasks, poll and epoll wait on host files through the
/// same queues as on Sentry objects, and nothing spins. Each FD is armed
/// one-shot for the union of its entries' masks when an entry registers and
/// when a look finds it not ready (`rearm`); the host reports an FD already
/// ready at once. Host-only, never saved.
final class HostPoller: @unchecked Sendable { // `state` is guarded by its Mutex; `epollFD` is immutable
    static let shared = HostPoller()

    private struct State {
        var queues: [Int32: WaitQueue] = [:]
        var started = false
    }

    /// A leaf: callbacks run after it is let go.
    private let state = Mutex(State())
    /// The host epoll instance; -1 if it could not be made (then every
    /// registration is told at once that the FD may be ready).
    private let epollFD: Int32

    private init() {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
    }

    /// Adds `entry` to `hostFD`'s queue and arms the FD for the queue's events.
    func register(_ entry: WaitEntry, hostFD: Int32) {
        let queue = state.withLock { state -> WaitQueue in
            if let queue = state.queues[hostFD] { return queue }
            let queue = WaitQueue()
            state.queues[hostFD] = queue
            return queue
        }
        queue.register(entry)
        startIfNeeded()
        rearm(hostFD)
    }

    func unregister(_ entry: WaitEntry, hostFD: Int32) {
        state.withLock { $0.queues[hostFD] }?.unregister(entry)
    }

    /// Arms `hostFD` again for what its entries want (after a look found it
    /// not ready, since the one-shot arm may have been spent). An FD the host
    /// cannot poll (a regular file: EPERM) is always ready: its entries hear so now.
    func rearm(_ hostFD: Int32) {
        guard let queue = state.withLock({ $0.queues[hostFD] }) else { return }
        let interest = queue.interest
        guard !interest.isEmpty else { return }
        let events = interest.rawValue | UInt32(EPOLLONESHOT.rawValue)
        guard epollFD >= 0 else { return queue.notify(interest) }
        if cshim_epoll_ctl(epollFD, EPOLL_CTL_MOD, hostFD, events) == 0 { return }
        if errno == ENOENT, cshim_epoll_ctl(epollFD, EPOLL_CTL_ADD, hostFD, events) == 0 { return }
        queue.notify(interest)
    }

    /// Stops watching `hostFD` before it is closed.
    func forget(_ hostFD: Int32) {
        guard state.withLock({ $0.queues.removeValue(forKey: hostFD) }) != nil else { return }
        if epollFD >= 0 { _ = cshim_epoll_ctl(epollFD, EPOLL_CTL_DEL, hostFD, 0) }
    }

    private func startIfNeeded() {
        let start = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started && epollFD >= 0
        }
        guard start else { return }
        do {
            try HostThread.start(detached: true) { [self] in run() }
        } catch {
            // No thread to wait with: registrations are told at once (callers look again).
            let queues = state.withLock { Array($0.queues.values) }
            for queue in queues { queue.notify(queue.interest) }
        }
    }

    private func run() {
        var fds = [Int32](repeating: -1, count: 16)
        var events = [UInt32](repeating: 0, count: 16)
        while true {
            let count = cshim_epoll_wait(epollFD, &fds, &events, Int32(fds.count))
            guard count > 0 else { continue }
            for index in 0..<Int(count) {
                guard let queue = state.withLock({ $0.queues[fds[index]] }) else { continue }
                queue.notify(PollEvents(rawValue: events[index]))
            }
        }
    }
}

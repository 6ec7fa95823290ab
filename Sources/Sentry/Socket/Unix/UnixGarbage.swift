import Synchronization

/// unix_gc (net/unix/garbage.c): a unix socket whose only references are
/// SCM_RIGHTS messages in flight in queues that are themselves unreachable
/// (a socket sent over itself, a cycle of two) would never be released.
/// When a unix socket is released, the sockets whose queues hold files are
/// looked at: a socket in flight is a candidate when every reference to it
/// is one of those messages; candidates referred to from a queue that is
/// not a candidate's (or from a reachable candidate's) are reachable; the
/// other candidates' messages with files are dropped, which releases them.
/// Each kernel's unix namespace has its own (`UnixNamespace.garbage`): a
/// collection walks only its kernel's sockets and counts only its releases.
final class UnixGarbage: Sendable {
    private struct Holder {
        weak var socket: UnixSocket?
    }

    /// The sockets whose queues may hold files (`holders`, keyed by
    /// identity, host-only: rebuilt after a load), whether a collection
    /// runs (releases during it do not start another) and the releases
    /// since the last one. A leaf: taken under no other lock but a socket
    /// queue's, briefly.
    private let state = Mutex<(holders: [ObjectIdentifier: Holder], running: Bool, releases: Int)>(([:], false, 0))

    /// A collection walks every holder: one per this many holders released
    /// keeps its cost in proportion to the releases (as Linux coalesces
    /// unix_gc), where one per release made a chain of n sockets cost n².
    private static let holdersPerCollection = 32

    /// `socket`'s queue got a message with files.
    func holding(_ socket: UnixSocket) {
        state.withLock { $0.holders[ObjectIdentifier(socket)] = Holder(socket: socket) }
    }

    /// Runs a collection unless none can find anything, one runs already, or
    /// too few releases came since the last for the holders there are.
    func collect() {
        let holders: [UnixSocket]? = state.withLock { state in
            guard !state.running, !state.holders.isEmpty else { return nil }
            state.releases += 1
            guard state.releases >= state.holders.count / Self.holdersPerCollection else { return nil }
            state.releases = 0
            state.running = true
            return state.holders.values.compactMap(\.socket)
        }
        guard let holders else { return }
        defer { state.withLock { $0.running = false } }
        var filesHeld: [ObjectIdentifier: [FileDescription]] = [:]
        var inFlight: [ObjectIdentifier: (socket: UnixSocket, count: Int)] = [:]
        var idle: [UnixSocket] = []
        for holder in holders {
            let files = holder.receiveQueue.filesInFlight
            if files.isEmpty { idle.append(holder) }
            filesHeld[ObjectIdentifier(holder)] = files
            for case let socket as UnixSocket in files {
                inFlight[ObjectIdentifier(socket), default: (socket, 0)].count += 1
            }
        }
        forget(idle)
        let candidates = Set(inFlight.filter { $0.value.socket.references == $0.value.count }.keys)
        guard !candidates.isEmpty else { return }
        var reachable = Set<ObjectIdentifier>()
        var pending: [ObjectIdentifier] = []
        func mark(_ files: [FileDescription]) {
            for case let socket as UnixSocket in files {
                let key = ObjectIdentifier(socket)
                if candidates.contains(key), reachable.insert(key).inserted { pending.append(key) }
            }
        }
        for (holder, files) in filesHeld where !candidates.contains(holder) { mark(files) }
        while let next = pending.popLast() { mark(filesHeld[next] ?? []) }
        for key in candidates.subtracting(reachable) {
            inFlight[key]?.socket.receiveQueue.dropMessagesWithFiles()
        }
    }

    /// Forgets every holder: their kernel is discarded.
    func forgetAll() {
        state.withLock { state in
            state.holders = [:]
            state.releases = 0
        }
    }

    /// Forgets holders whose queues hold no files, unless one came meanwhile
    /// (an enqueue registers its socket again after letting the queue go).
    private func forget(_ idle: [UnixSocket]) {
        state.withLock { state in
            for socket in idle where socket.receiveQueue.filesInFlight.isEmpty {
                state.holders[ObjectIdentifier(socket)] = nil
            }
            state.holders = state.holders.filter { $0.value.socket != nil }
        }
    }
}

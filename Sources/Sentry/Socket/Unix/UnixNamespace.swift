import State

/// A kernel's unix socket namespace (Linux keeps one per network namespace,
/// a container's): the abstract names its sockets bound, and the garbage
/// collector of its sockets holding files in flight. Each kernel has its
/// own (`Kernel.unixNamespace`), so a kernel restored in the process of a
/// discarded one (the save/restore test mode) or beside another (tests)
/// never meets the other's sockets. Its contents are not saved: loaded
/// sockets enter their names and the collector's list again; the object is
/// saved so that a kernel and its sockets find the same one after a load.
final class UnixNamespace: Savable, @unchecked Sendable { // `abstractNames` guarded by `UnixSocket.namespace`
    static let savedTypeName = "unix.Namespace"
    static let notSaved: Set<String> = [
        "abstractNames", // entered again by the loaded sockets
        "garbage", // host-only: its list is entered again by the loaded sockets
    ]

    /// Bound abstract names, keyed by `UnixSocket.abstractKey` (each socket type has its own).
    var abstractNames: [[UInt8]: UnixSocket] = [:]
    let garbage = UnixGarbage()

    init() {}

    func save(to sink: inout SaveSink) throws {}

    func load(from source: inout LoadSource) throws {}

    /// A discarded kernel's sockets leave its names and its collector's list
    /// (they would otherwise live on with it, never closed).
    func discard() {
        UnixSocket.namespace.withLock { _ in abstractNames = [:] }
        garbage.forgetAll()
    }
}

extension Task {
    /// The namespace of the unix sockets this task makes: its kernel's (a
    /// task without one, which only a test makes, gets one of its own).
    var unixNamespace: UnixNamespace { kernel?.unixNamespace ?? UnixNamespace() }
}

import Glibc
import Synchronization

/// One host FD (a directory's O_PATH FD, an open file's), closed when its
/// last holder lets go: a cache may drop it while a host call on another
/// thread still uses it, and the number must not be closed (and reused by
/// another open) under that call.
final class HostDescriptor: Sendable {
    let fd: Int32

    init(_ fd: Int32) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// Runs `body` with the FD, keeping it open until `body` returns.
    func withFD<T>(_ body: (Int32) throws(SyscallError) -> T) throws(SyscallError) -> T {
        try withExtendedLifetime(self) { () throws(SyscallError) -> T in try body(fd) }
    }
}

/// The hostfs directories whose host FDs stay open, at most `limit` of them:
/// a `find /` over a large rootfs must not hold one host FD per directory it
/// went through (they would exhaust the sandbox's RLIMIT_NOFILE, and every
/// later open and the checkpoint would fail with EMFILE). When the cache
/// grows past its limit, the least recently used quarter is evicted; an
/// evicted directory is reopened by name from its nearest cached ancestor
/// when next used (`HostFilesystem.directory(_:)`).
final class HostDirectoryCache: Sendable {
    /// At most this many directory FDs, and no more than a quarter of the
    /// sandbox's own FD limit, so the application's host files (bounded by
    /// its RLIMIT_NOFILE) and the Sentry's files keep the rest.
    static let defaultLimit = 1024

    let limit: Int
    /// Guarded by its own lock, never held while a HostInode's `fdLock` is taken.
    private let state = Mutex(State())

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var clock: UInt64 = 0
    }

    private struct Entry {
        weak var inode: HostInode?
        var lastUse: UInt64
    }

    init(limit: Int = HostDirectoryCache.hostLimit()) {
        self.limit = max(limit, 16)
    }

    /// The default bound for this process: 1024, or a quarter of RLIMIT_NOFILE if that is lower.
    static func hostLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_RESOURCE, &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return defaultLimit
        }
        return min(defaultLimit, Int(clamping: limit.rlim_cur / 4))
    }

    /// Records a use of `inode`'s cached FD.
    func touch(_ inode: HostInode) {
        state.withLock { state in
            state.clock += 1
            state.entries[ObjectIdentifier(inode)]?.lastUse = state.clock
        }
    }

    /// Records that `inode` now caches an FD; evicts the least recently used
    /// quarter when that takes the cache past its limit.
    func didCache(_ inode: HostInode) {
        let evicted: [HostInode] = state.withLock { state in
            state.clock += 1
            state.entries[ObjectIdentifier(inode)] = Entry(inode: inode, lastUse: state.clock)
            guard state.entries.count > limit else { return [] }
            let oldest = state.entries.sorted { $0.value.lastUse < $1.value.lastUse }
                .prefix(state.entries.count - limit * 3 / 4)
            var evicted: [HostInode] = []
            for (key, entry) in oldest {
                state.entries[key] = nil
                if let inode = entry.inode { evicted.append(inode) }
            }
            return evicted
        }
        for inode in evicted { inode.forgetDirectory() }
    }

    /// Drops every cached FD (a kernel thrown away).
    func forgetAll() {
        let inodes = state.withLock { state in
            defer { state.entries = [:] }
            return state.entries.values.compactMap(\.inode)
        }
        for inode in inodes { inode.forgetDirectory() }
    }

    /// `inode` dropped its FD (its name went away on the host).
    func didForget(_ inode: HostInode) {
        _ = state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(inode)) }
    }
}

/// RLIMIT_NOFILE as getrlimit's resource argument (Glibc imports the enum case, not an Int32).
private let RLIMIT_NOFILE_RESOURCE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

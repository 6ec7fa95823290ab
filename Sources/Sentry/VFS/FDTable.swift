import State
import Synchronization

/// A process's file descriptors: each number refers to a shared open file
/// description and carries its own close-on-exec flag. Shared by threads
/// (CLONE_FILES), copied by fork.
public final class FDTable: Savable, @unchecked Sendable { // `entries` is guarded by `lock`
    public static let savedTypeName = "vfs.FDTable"
    public static let notSaved: Set<String> = [
        "lock",
        "users", // each loaded task that uses the table counts itself again (Task.afterLoad)
    ]

    public struct Entry: SavableStruct, @unchecked Sendable { // the file has its own locks
        public static let savedTypeName = "vfs.FDTable.Entry"
        public var file: FileDescription
        public var closeOnExec: Bool

        public init(file: FileDescription, closeOnExec: Bool) {
            self.file = file
            self.closeOnExec = closeOnExec
        }

        public func save(to sink: inout SaveSink) throws {
            try sink.save("file", file)
            try sink.save("closeOnExec", closeOnExec)
        }

        public init(from source: inout LoadSource) throws {
            file = try source.load("file")
            closeOnExec = try source.load("closeOnExec")
        }
    }

    /// Lock order (see VFSLock): under the VFS lock (procfs fd/), a leaf:
    /// closed files are released after it is let go.
    private let lock = Mutex(())
    private var entries = FDEntries()
    /// The tasks using the table (threads made with CLONE_FILES share it,
    /// close_range's CLOSE_RANGE_UNSHARE leaves it); the last to go closes
    /// everything. Guarded by `lock`.
    private var users = 1

    public required init() {}

    func addUser() {
        lock.withLock { _ in users += 1 }
    }

    /// A task stops using the table; the last one closes every descriptor.
    func removeUser() {
        let last = lock.withLock { _ -> Bool in
            users -= 1
            return users <= 0
        }
        if last { removeAll() }
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("entries", lock.withLock { _ in entries.dictionary })
    }

    public func load(from source: inout LoadSource) throws {
        let loaded: [Int32: Entry] = try source.load("entries")
        for fd in loaded.keys {
            try ImageValidation.require(fd >= 0 && UInt64(fd) < Process.maxOpenFiles, field: "entries[\(fd)]",
                                        "FD \(fd) is outside 0..<nr_open")
        }
        lock.withLock { _ in
            entries = FDEntries(loaded)
            users = 0
        }
    }

    /// The description behind `fd`, or EBADF.
    public func get(_ fd: Int32) throws(SyscallError) -> FileDescription {
        guard let entry = lock.withLock({ _ in entries[fd] }) else { throw .ebadf }
        return entry.file
    }

    /// The description behind `fd` with a reference taken under the table's
    /// lock, or EBADF: a close on another thread cannot release it in between.
    /// The caller releases the reference.
    public func getRetained(_ fd: Int32) throws(SyscallError) -> FileDescription {
        guard let file = lock.withLock({ _ -> FileDescription? in
            guard let entry = entries[fd] else { return nil }
            entry.file.retainReference()
            return entry.file
        }) else { throw .ebadf }
        return file
    }

    public func entry(_ fd: Int32) -> Entry? {
        lock.withLock { _ in entries[fd] }
    }

    /// Every open description, in no order.
    var descriptions: [FileDescription] { lock.withLock { _ in entries.values.map(\.file) } }

    /// Installs `file` at the lowest free number ≥ `minimum`, below `limit` (RLIMIT_NOFILE).
    public func install(_ file: FileDescription, closeOnExec: Bool, minimum: Int32 = 0,
                        limit: Int32 = 1024) throws(SyscallError) -> Int32 {
        let fd = try lock.withLock { _ throws(SyscallError) -> Int32 in
            var candidate = max(0, minimum)
            while entries[candidate] != nil { candidate += 1 }
            guard candidate < limit else { throw .emfile }
            entries[candidate] = Entry(file: file, closeOnExec: closeOnExec)
            return candidate
        }
        file.retainReference()
        return fd
    }

    /// dup2/dup3: puts `file` at `fd`, closing what was there.
    public func install(_ file: FileDescription, at fd: Int32, closeOnExec: Bool,
                        limit: Int32 = 1024) throws(SyscallError) {
        guard fd >= 0, fd < limit else { throw .ebadf }
        file.retainReference()
        let replaced = lock.withLock { _ in
            let old = entries[fd]
            entries[fd] = Entry(file: file, closeOnExec: closeOnExec)
            return old
        }
        if let replaced { close(replaced.file) }
    }

    /// close(2).
    public func remove(_ fd: Int32) throws(SyscallError) {
        guard let removed = lock.withLock({ _ in entries.removeValue(forKey: fd) }) else { throw .ebadf }
        close(removed.file)
    }

    public func setCloseOnExec(_ fd: Int32, _ value: Bool) throws(SyscallError) {
        try lock.withLock { _ throws(SyscallError) in
            guard entries[fd] != nil else { throw .ebadf }
            entries[fd]?.closeOnExec = value
        }
    }

    /// close_range(2): closes the open descriptors from `first` through
    /// `last`, or with `closeOnExec` marks them close-on-exec instead.
    public func closeRange(_ range: ClosedRange<Int32>, closeOnExec: Bool) {
        let closed = lock.withLock { _ -> [Entry] in
            let inRange = entries.sorted.filter { range.contains($0.fd) }
            for (fd, _) in inRange {
                if closeOnExec { entries[fd]?.closeOnExec = true } else { entries[fd] = nil }
            }
            return closeOnExec ? [] : inRange.map(\.entry)
        }
        for entry in closed { close(entry.file) }
    }

    /// execve: closes every close-on-exec descriptor.
    public func closeOnExec() {
        let closed = lock.withLock { _ -> [Entry] in
            let doomed = entries.sorted.filter { $0.entry.closeOnExec }
            for (fd, _) in doomed { entries[fd] = nil }
            return doomed.map(\.entry)
        }
        for entry in closed { close(entry.file) }
    }

    /// Process exit: closes everything.
    public func removeAll() {
        let closed = lock.withLock { _ -> [Entry] in
            defer { entries = FDEntries() }
            return entries.values
        }
        for entry in closed { close(entry.file) }
    }

    /// filp_close: the process's record locks on the file go with any of its
    /// descriptors (locks_remove_posix), then the description loses a reference.
    private func close(_ file: FileDescription) {
        file.inode?.existingLocks?.releaseProcessLocks(of: self)
        file.releaseReference()
    }

    /// fork without CLONE_FILES: the same descriptions under the same numbers.
    public func fork() -> FDTable {
        let copy = FDTable()
        let snapshot = lock.withLock { _ in entries }
        for entry in snapshot.values { entry.file.retainReference() }
        copy.entries = snapshot
        return copy
    }

    /// The open descriptors in ascending order (for /proc/[pid]/fd).
    public var descriptors: [(fd: Int32, entry: Entry)] {
        lock.withLock { _ in entries.sorted }
    }
}

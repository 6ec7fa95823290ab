import State
import Synchronization

/// The advisory locks on one inode (fs/locks.c's file_lock_context), held in
/// the Sentry and never on a host file: flock(2) locks, owned by an open file
/// description, and fcntl record locks, owned by a process's FD table (a
/// POSIX lock: Linux's fl_owner is current->files) or by an open file
/// description (an OFD lock). flock and record locks never conflict with each
/// other. Locks are saved with their inode; tasks waiting for one are not:
/// they re-run their syscall after a restore and wait again.
public final class FileLocks: Savable, @unchecked Sendable { // `flocks` and `records` are guarded by `lock`
    public static let savedTypeName = "lock.FileLocks"
    public static let notSaved: Set<String> = ["lock", "queue"]

    /// Lock order (see VFSLock): taken with no file data lock held (ranges are
    /// computed before); takes only `LockWaitGraph.lock`. Waiters are notified
    /// after it is let go.
    private let lock = Mutex(())
    private var flocks: [FlockHolder] = []
    /// Each owner's ranges never overlap each other; adjacent ones of one type are merged.
    private var records: [RecordLock] = []
    /// Host-only: tasks blocked in flock or F_SETLKW; they register again after a load.
    private let queue = WaitQueue()

    public required init() {}

    public func save(to sink: inout SaveSink) throws {
        let (flocks, records) = lock.withLock { _ in (self.flocks, self.records) }
        try sink.save("flocks", flocks)
        try sink.save("records", records)
    }

    public func load(from source: inout LoadSource) throws {
        flocks = try source.load("flocks")
        records = try source.load("records")
        for (index, record) in records.enumerated() {
            try ImageValidation.require(record.start >= 0 && record.start <= record.end, field: "records[\(index)]",
                                        "lock range \(record.start)...\(record.end)")
        }
    }

    var isEmpty: Bool { lock.withLock { _ in flocks.isEmpty && records.isEmpty } }

    // MARK: flock(2)

    /// flock_lock_inode: `exclusive` nil unlocks. Converting a held lock drops
    /// it first, as Linux does, so a conversion that would block and is
    /// non-blocking (`waiter` nil) leaves no lock behind.
    func flock(_ description: FileDescription, exclusive: Bool?, waiter: Waiter?) throws(SyscallError) {
        try retry(waiter: waiter) { () -> Result<Void, SyscallError>? in
            let (acquired, dropped) = lock.withLock { _ -> (Bool, Bool) in
                var dropped = false
                if let index = flocks.firstIndex(where: { $0.description === description }) {
                    if flocks[index].isExclusive == exclusive { return (true, false) }
                    flocks.remove(at: index)
                    dropped = true
                }
                guard let exclusive else { return (true, dropped) }
                if flocks.contains(where: { exclusive || $0.isExclusive }) { return (false, dropped) }
                flocks.append(FlockHolder(description: description, isExclusive: exclusive))
                return (true, dropped)
            }
            if dropped { queue.notify(.all) }
            return acquired ? .success(()) : nil
        }
    }

    // MARK: Record locks

    /// The first lock of another owner that `request` conflicts with
    /// (posix_test_lock), or nil: what F_GETLK reports.
    func conflictingRecord(with request: RecordLock) -> RecordLock? {
        lock.withLock { _ in records.first { $0.conflicts(with: request) } }
    }

    /// posix_lock_inode: sets `request` (unlocking when `isUnlock`) over its
    /// range, splitting and merging the owner's locks. While another owner's
    /// lock conflicts: EAGAIN without a waiter, else blocks, EDEADLK when the
    /// wait would close a cycle of POSIX owners waiting for each other.
    func setRecord(_ request: RecordLock, isUnlock: Bool, waiter: Waiter?) throws(SyscallError) {
        defer { if let waiter, request.isProcessLock { LockWaitGraph.stopWaiting(ObjectIdentifier(waiter)) } }
        try retry(waiter: waiter) { () -> Result<Void, SyscallError>? in
            let outcome = lock.withLock { _ -> Result<Void, SyscallError>? in
                if !isUnlock, let conflict = records.first(where: { $0.conflicts(with: request) }) {
                    if let waiter, request.isProcessLock {
                        do throws(SyscallError) {
                            try LockWaitGraph.startWaiting(ObjectIdentifier(waiter), owner: request.owner,
                                                           for: conflict.owner)
                        } catch {
                            return .failure(error)
                        }
                    }
                    return nil
                }
                apply(request, isUnlock: isUnlock)
                return .success(())
            }
            if case .success = outcome { queue.notify(.all) }
            return outcome
        }
    }

    /// Runs `attempt` until it ends (nil: a lock conflicts), waiting on the
    /// queue between tries; EAGAIN at once without a waiter (non-blocking).
    private func retry(waiter: Waiter?, _ attempt: () -> Result<Void, SyscallError>?) throws(SyscallError) {
        let result: Result<Void, SyscallError>
        if let waiter {
            result = try waiter.wait(on: queue, for: .all, until: attempt)
        } else {
            guard let ended = attempt() else { throw .eagain }
            result = ended
        }
        try result.get()
    }

    /// Replaces the owner's locks over the request's range: pieces of other
    /// types outside it are kept, locks of the same type that overlap or
    /// touch it are merged into it.
    private func apply(_ request: RecordLock, isUnlock: Bool) {
        var kept: [RecordLock] = []
        var merged = request
        for record in records {
            guard record.owner == request.owner else {
                kept.append(record)
                continue
            }
            let touches = record.end >= request.start - 1
                && (request.end == LockABI.offsetMaximum || record.start <= request.end + 1)
            if !isUnlock, record.isWrite == request.isWrite, touches {
                merged.start = min(merged.start, record.start)
                merged.end = max(merged.end, record.end)
                continue
            }
            guard record.end >= request.start, record.start <= request.end else {
                kept.append(record)
                continue
            }
            if record.start < request.start {
                var left = record
                left.end = request.start - 1
                kept.append(left)
            }
            if record.end > request.end {
                var right = record
                right.start = request.end + 1
                kept.append(right)
            }
        }
        if !isUnlock { kept.append(merged) }
        records = kept.sorted { $0.start < $1.start }
    }

    // MARK: Release

    /// A process closed a descriptor of this inode (locks_remove_posix): all
    /// its POSIX locks here go, whichever descriptor set them.
    func releaseProcessLocks(of table: FDTable) {
        let owner = ObjectIdentifier(table)
        let removed = lock.withLock { _ -> Bool in
            let before = records.count
            records.removeAll { $0.owner == owner }
            return records.count != before
        }
        if removed { queue.notify(.all) }
    }

    /// The description's last reference went (locks_remove_file): its flock
    /// and its OFD locks go.
    func releaseDescriptionLocks(of description: FileDescription) {
        let owner = ObjectIdentifier(description)
        let removed = lock.withLock { _ -> Bool in
            let before = flocks.count + records.count
            flocks.removeAll { $0.description === description }
            records.removeAll { $0.owner == owner }
            return flocks.count + records.count != before
        }
        if removed { queue.notify(.all) }
    }
}

/// One flock(2) lock: the open file description holding it and its kind.
struct FlockHolder: SavableStruct, @unchecked Sendable { // the description has its own locks
    static let savedTypeName = "lock.FlockHolder"
    var description: FileDescription
    var isExclusive: Bool

    init(description: FileDescription, isExclusive: Bool) {
        self.description = description
        self.isExclusive = isExclusive
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("description", description)
        try sink.save("isExclusive", isExclusive)
    }

    init(from source: inout LoadSource) throws {
        description = try source.load("description")
        isExclusive = try source.load("isExclusive")
    }
}

/// One fcntl record lock over `start...end` (inclusive; OFFSET_MAX: to the
/// end of the file and past it), owned by a process's FD table (POSIX) or by
/// an open file description (OFD), with the locker's PID for F_GETLK.
struct RecordLock: SavableStruct, @unchecked Sendable { // the owners have their own locks
    static let savedTypeName = "lock.RecordLock"
    static let notSaved: Set<String> = []
    var process: FDTable?
    var description: FileDescription?
    var isWrite: Bool
    var start: Int64
    var end: Int64
    var pid: Int32

    init(process: FDTable, isWrite: Bool, start: Int64, end: Int64, pid: Int32) {
        self.process = process
        self.isWrite = isWrite
        self.start = start
        self.end = end
        self.pid = pid
    }

    init(description: FileDescription, isWrite: Bool, start: Int64, end: Int64) {
        self.description = description
        self.isWrite = isWrite
        self.start = start
        self.end = end
        self.pid = -1
    }

    var isProcessLock: Bool { process != nil }

    var owner: ObjectIdentifier {
        if let process { return ObjectIdentifier(process) }
        if let description { return ObjectIdentifier(description) }
        return ObjectIdentifier(RecordLock.self)
    }

    /// posix_locks_conflict: another owner, overlapping ranges, one of them a write lock.
    func conflicts(with request: RecordLock) -> Bool {
        owner != request.owner && (isWrite || request.isWrite) && start <= request.end && request.start <= end
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("process", process)
        try sink.save("description", description)
        try sink.save("isWrite", isWrite)
        try sink.save("start", start)
        try sink.save("end", end)
        try sink.save("pid", pid)
    }

    init(from source: inout LoadSource) throws {
        process = try source.load("process")
        description = try source.load("description")
        isWrite = try source.load("isWrite")
        start = try source.load("start")
        end = try source.load("end")
        pid = try source.load("pid")
        try ImageValidation.require((process == nil) != (description == nil), field: "process",
                                    "a record lock needs exactly one owner")
    }
}

/// The blocked POSIX lock requests (fs/locks.c's blocked_hash), for
/// F_SETLKW's deadlock detection: one entry per waiting task, so threads
/// of one process waiting at once each keep theirs. Host-only: waiters
/// enter it again when their syscall re-runs after a restore.
enum LockWaitGraph {
    private struct Wait {
        let waiter: ObjectIdentifier
        let owner: ObjectIdentifier
        let blocker: ObjectIdentifier
    }

    /// A leaf, taken under a FileLocks lock. The latest wait last.
    private static let waits = Mutex<[Wait]>([])

    /// posix_locks_deadlock: EDEADLK if `blocker`, or whoever it waits for
    /// (what_owner_is_waiting_for: its latest blocked request) and so on up
    /// to MAX_DEADLK_ITERATIONS, waits for `owner`; otherwise records that
    /// `waiter`, for `owner`, waits for `blocker`.
    static func startWaiting(_ waiter: ObjectIdentifier, owner: ObjectIdentifier,
                             for blocker: ObjectIdentifier) throws(SyscallError) {
        try waits.withLock { waits throws(SyscallError) in
            waits.removeAll { $0.waiter == waiter }
            var current = blocker
            for _ in 0...LockABI.maximumDeadlockIterations {
                guard let next = waits.last(where: { $0.owner == current })?.blocker else { break }
                if next == owner { throw .edeadlk }
                current = next
            }
            waits.append(Wait(waiter: waiter, owner: owner, blocker: blocker))
        }
    }

    static func stopWaiting(_ waiter: ObjectIdentifier) {
        waits.withLock { $0.removeAll { $0.waiter == waiter } }
    }
}

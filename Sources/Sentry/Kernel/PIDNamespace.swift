import State
import Synchronization

/// Thread and process IDs. The container's init is 1; IDs are Sentry values,
/// unrelated to host PIDs, so they survive a restore on another host.
public final class PIDNamespace: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.PIDNamespace"
    public static let notSaved: Set<String> = ["lock"]

    /// Linux's default pid_max.
    public static let maxID: Int32 = 4_194_304

    // Guarded by `lock`: a leaf, taken under the VFS lock by procfs (see VFSLock).
    private let lock = Mutex<Void>(())
    private var nextID: Int32 = 1
    private var tasks: [Int32: Task] = [:]
    private var threadGroups: [Int32: ThreadGroup] = [:]

    public init() {}

    /// Allocates the lowest free ID at or after the last one handed out, wrapping as Linux does.
    func allocateID(for task: Task) throws(SyscallError) -> Int32 {
        try lock.withLock { _ throws(SyscallError) -> Int32 in
            for _ in 0..<PIDNamespace.maxID {
                let candidate = nextID
                nextID = nextID >= PIDNamespace.maxID - 1 ? 300 : nextID + 1
                if tasks[candidate] == nil && threadGroups[candidate] == nil {
                    tasks[candidate] = task
                    return candidate
                }
            }
            throw SyscallError.eagain
        }
    }

    /// An exec'ing non-leader thread takes its group's ID as its TID
    /// (de_thread): its own is freed; the leader's, free since the leader
    /// left, was held by the group.
    func moveTask(_ task: Task, from old: Int32, to new: Int32) {
        lock.withLock { _ in
            if tasks[old] === task { tasks[old] = nil }
            tasks[new] = task
        }
    }

    func register(_ group: ThreadGroup, id: Int32) {
        lock.withLock { _ in threadGroups[id] = group }
    }

    /// Forgets a task's ID (and its group's, when the group is reaped).
    func release(taskID: Int32) {
        lock.withLock { _ in _ = tasks.removeValue(forKey: taskID) }
    }

    func release(groupID: Int32) {
        lock.withLock { _ in _ = threadGroups.removeValue(forKey: groupID) }
    }

    public func task(_ id: Int32) -> Task? { lock.withLock { _ in tasks[id] } }
    public func threadGroup(_ id: Int32) -> ThreadGroup? { lock.withLock { _ in threadGroups[id] } }
    public var allTasks: [Task] {
        let snapshot: [Int32: Task] = lock.withLock { _ in tasks }
        return snapshot.keys.sorted().compactMap { snapshot[$0] }
    }

    public var allThreadGroups: [ThreadGroup] {
        let snapshot: [Int32: ThreadGroup] = lock.withLock { _ in threadGroups }
        return snapshot.keys.sorted().compactMap { snapshot[$0] }
    }

    public func save(to sink: inout SaveSink) throws {
        let (next, taskSnapshot, groupSnapshot) = lock.withLock { _ in (nextID, tasks, threadGroups) }
        try sink.save("nextID", next)
        try sink.save("tasks", taskSnapshot)
        try sink.save("threadGroups", groupSnapshot)
    }

    public func load(from source: inout LoadSource) throws {
        nextID = try source.load("nextID")
        tasks = try source.load("tasks")
        threadGroups = try source.load("threadGroups")
        try ImageValidation.processID(nextID, field: "nextID")
        for id in tasks.keys { try ImageValidation.processID(id, field: "tasks[\(id)]") }
        for id in threadGroups.keys { try ImageValidation.processID(id, field: "threadGroups[\(id)]") }
    }

    /// Each ID names the task or group that has it.
    public func afterLoad() throws {
        for (id, task) in tasks {
            try ImageValidation.require(task.id == id, field: "tasks[\(id)]", "the task's ID is \(task.id)")
        }
        for (id, group) in threadGroups {
            try ImageValidation.require(group.id == id, field: "threadGroups[\(id)]", "the group's ID is \(group.id)")
        }
    }
}

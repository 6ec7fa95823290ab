import State

/// One SysV semaphore set (ipc/sem.c's sem_array): values, the last PID to
/// operate on each, and the tasks blocked in semop on it. Guarded by its
/// registry's lock; the queue is its own.
final class SemaphoreSet: IPCObject, Savable, @unchecked Sendable {
    static let savedTypeName = "ipc.SemaphoreSet"
    static let notSaved: Set<String> = [
        "removed", // a removed set is not saved: nothing names it
        "queue", // waiters register again when their semop runs again
        "waiters", // counted again as their semop runs again
    ]
    static let savedAs: [String: String] = ["operationTime": "times", "changeTime": "times"]

    var permissions = IPCPermissions()
    var values: [UInt16] = []
    var lastPIDs: [Int32] = []
    var operationTime: Int64 = 0, changeTime: Int64 = 0
    /// IPC_RMID: blocked operations fail with EIDRM.
    var removed = false
    /// What semop waits on: notified at every change of the values and at removal.
    let queue = WaitQueue()
    /// The blocked semops: the semaphore each waits on and whether for zero
    /// (GETZCNT) or an increase (GETNCNT).
    var waiters: [ObjectIdentifier: (semaphore: Int, forZero: Bool)] = [:]

    init() {}

    init(permissions: IPCPermissions, count: Int, now: Int64) {
        self.permissions = permissions
        values = [UInt16](repeating: 0, count: count)
        lastPIDs = [Int32](repeating: 0, count: count)
        changeTime = now
    }

    var isLive: Bool { !removed }

    /// struct semid64_ds.
    var semid: [UInt8] {
        var out = permissions.bytes + [UInt8](repeating: 0, count: LinuxSemaphore.semidSize - 48)
        out.put(operationTime, at: 48)
        out.put(changeTime, at: 64)
        out.put(UInt64(values.count), at: 80)
        return out
    }

    /// GETNCNT, GETZCNT: the tasks blocked on `semaphore`.
    func waiting(on semaphore: Int, forZero: Bool) -> Int {
        waiters.values.count { $0.semaphore == semaphore && $0.forZero == forZero }
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("permissions", permissions)
        try sink.save("values", values)
        try sink.save("lastPIDs", lastPIDs)
        try sink.save("times", [operationTime, changeTime])
    }

    func load(from source: inout LoadSource) throws {
        permissions = try source.load("permissions")
        values = try source.load("values")
        lastPIDs = try source.load("lastPIDs")
        let times: [Int64] = try source.load("times")
        guard times.count == 2 else { throw StateError.invalidValue("\(times.count) times, expected 2", field: "times") }
        (operationTime, changeTime) = (times[0], times[1])
        try ImageValidation.require((1...LinuxSemaphore.SEMMSL).contains(values.count) && lastPIDs.count == values.count,
                                    field: "values", "\(values.count) values and \(lastPIDs.count) PIDs")
        try ImageValidation.require(values.allSatisfy { Int32($0) <= LinuxSemaphore.SEMVMX }, field: "values",
                                    "a value above SEMVMX")
    }
}

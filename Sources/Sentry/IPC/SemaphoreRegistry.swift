import State
import Synchronization

/// One operation of a semop call (struct sembuf).
struct SemaphoreOperation: Sendable {
    var semaphore: Int
    var change: Int32
    var flags: Int16

    var undoes: Bool { flags & LinuxSemaphore.SEM_UNDO != 0 }
    var noWait: Bool { flags & LinuxSemaphore.IPC_NOWAIT != 0 }
}

/// A kernel's SysV semaphore sets (its IPC namespace's), and each
/// process's SEM_UNDO adjustments, applied when it exits.
final class SemaphoreRegistry: IPCRegistry, Savable, @unchecked Sendable { // guarded by `lock`
    static let savedTypeName = "ipc.SemaphoreRegistry"
    static let notSaved: Set<String> = ["lock"]
    static let savedAs: [String: String] = ["adjustments": "undo"]

    let lock = Mutex<Void>(())
    var slots = IPCSlots<SemaphoreSet>(limit: LinuxSemaphore.SEMMNI)
    /// SEM_UNDO: process ID, then set ID, then what each semaphore gets back at exit.
    var adjustments: [Int32: [Int32: [Int32]]] = [:]

    init() {}

    func withSlots<Result>(_ body: (inout IPCSlots<SemaphoreSet>) -> Result) -> Result {
        lock.withLock { _ in body(&slots) }
    }

    /// What a semop found: done, or which operation must wait (for zero, or for more).
    enum Outcome {
        case done
        case blocked(semaphore: Int, forZero: Bool, noWait: Bool)
    }

    /// try_atomic_semop: the operations in order on a copy of the values;
    /// all of them, or none if one must wait (or ERANGE past SEMVMX or an
    /// adjustment past SEMAEM). Done, it records `processID` on each
    /// semaphore, SEM_UNDO adjustments for `processID`, and wakes the waiters.
    func perform(_ operations: [SemaphoreOperation], on set: SemaphoreSet, processID: Int32,
                 now: Int64) throws(SyscallError) -> Outcome {
        let outcome = try lock.withLock { _ throws(SyscallError) -> Outcome in
            guard !set.removed else { throw .eidrm }
            var values = set.values.map { Int32($0) }
            var undo = adjustments[processID]?[set.permissions.id] ?? [Int32](repeating: 0, count: values.count)
            for operation in operations {
                let current = values[operation.semaphore]
                if operation.change == 0 {
                    if current != 0 { return .blocked(semaphore: operation.semaphore, forZero: true, noWait: operation.noWait) }
                    continue
                }
                let result = current + operation.change
                if result < 0 { return .blocked(semaphore: operation.semaphore, forZero: false, noWait: operation.noWait) }
                guard result <= LinuxSemaphore.SEMVMX else { throw .erange }
                if operation.undoes {
                    let adjustment = undo[operation.semaphore] - operation.change
                    guard (-LinuxSemaphore.SEMAEM - 1...LinuxSemaphore.SEMAEM).contains(adjustment) else { throw .erange }
                    undo[operation.semaphore] = adjustment
                }
                values[operation.semaphore] = result
            }
            set.values = values.map { UInt16(truncatingIfNeeded: $0) }
            for operation in operations { set.lastPIDs[operation.semaphore] = processID }
            set.operationTime = now
            if operations.contains(where: \.undoes) { adjustments[processID, default: [:]][set.permissions.id] = undo }
            return .done
        }
        if case .done = outcome, operations.contains(where: { $0.change != 0 }) { set.queue.notify(.input) }
        return outcome
    }

    /// SETVAL and SETALL: new values (already checked against SEMVMX) from
    /// `processID`; every process's adjustments for them are dropped.
    func setValues(_ values: [Int: UInt16], of set: SemaphoreSet, processID: Int32, now: Int64) {
        lock.withLock { _ in
            for (index, value) in values {
                set.values[index] = value
                set.lastPIDs[index] = processID
            }
            set.changeTime = now
            for process in adjustments.keys {
                guard var undo = adjustments[process]?[set.permissions.id] else { continue }
                for index in values.keys { undo[index] = 0 }
                adjustments[process]?[set.permissions.id] = undo
            }
        }
        set.queue.notify(.input)
    }

    /// IPC_RMID: the set goes; its waiters fail with EIDRM.
    func remove(_ set: SemaphoreSet) {
        lock.withLock { _ in
            set.removed = true
            slots.remove(set)
            for process in adjustments.keys { adjustments[process]?[set.permissions.id] = nil }
        }
        set.queue.notify(.input)
    }

    /// exit_sem: a process that exits gives back what its SEM_UNDO
    /// operations took, each value kept within 0...SEMVMX.
    func processExited(_ processID: Int32) {
        let touched = lock.withLock { _ -> [SemaphoreSet] in
            guard let undo = adjustments.removeValue(forKey: processID) else { return [] }
            var touched: [SemaphoreSet] = []
            for (id, changes) in undo {
                guard let set = slots.object(id: id) else { continue }
                for (index, change) in changes.enumerated() where change != 0 {
                    set.values[index] = UInt16(min(max(Int32(set.values[index]) + change, 0), LinuxSemaphore.SEMVMX))
                    set.lastPIDs[index] = processID
                }
                touched.append(set)
            }
            return touched
        }
        for set in touched { set.queue.notify(.input) }
    }

    func save(to sink: inout SaveSink) throws {
        try saveSlots(to: &sink)
        try sink.save("undo", lock.withLock { _ in adjustments })
    }

    func load(from source: inout LoadSource) throws {
        let loaded = try loadedSlots(from: &source)
        let undo: [Int32: [Int32: [Int32]]] = try source.load("undo")
        for changes in undo.values.flatMap(\.values) {
            try ImageValidation.require(changes.count <= LinuxSemaphore.SEMMSL
                                            && changes.allSatisfy { (-LinuxSemaphore.SEMAEM - 1...LinuxSemaphore.SEMAEM).contains($0) },
                                        field: "undo", "an adjustment out of range")
        }
        lock.withLock { _ in
            slots = loaded
            adjustments = undo
        }
    }

    /// Each adjustment names a set there is and has a value per semaphore
    /// of it: semop and exit index the set's semaphores with it.
    func afterLoad() throws {
        try lock.withLock { _ in
            try slots.validate()
            for (process, sets) in adjustments {
                for (id, changes) in sets {
                    try ImageValidation.require(slots.object(id: id)?.values.count == changes.count, field: "undo",
                                                "process \(process)'s adjustments name no set \(id) of \(changes.count) semaphores")
                }
            }
        }
    }
}

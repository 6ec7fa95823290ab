import State
import Synchronization

/// A process: the tasks that share a PID, signal dispositions, limits and an
/// exit status. The first task is the leader; its TID is the group's ID.
public final class ThreadGroup: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.ThreadGroup"
    public static let notSaved: Set<String> = [
        "lock",
        "cpuTimersArmed", "cpuKickAt", // host-only, derived from signalTimers after a load (SignalTimers.swift)
        "signalWaiters", // host-only: signalfd readers wait here, none across a checkpoint
    ]
    public static let savedAs: [String: String] = [
        "storedLimits": "limits", "storedOOMScoreAdjustment": "oomScoreAdjustment",
    ]

    // Guarded by `lock`: tasks, exitReason, limits, the OOM score adjustment,
    // the pending signals (the group's and its tasks') and the tasks' signal
    // masks. Lock order: taken under the VFS lock by procfs (see VFSLock);
    // this lock before `signalHandlers`' lock; tasks are interrupted after it
    // is let go.
    let lock = Mutex<Void>(())
    public private(set) var id: Int32 = 0
    public internal(set) var kernel: Kernel?
    var tasks: [Task] = []
    public internal(set) var leader: Task?
    public internal(set) var parent: ThreadGroup?
    public internal(set) var signalHandlers = SignalHandlers()
    /// Signals sent to the process as a whole; guarded by `lock`.
    var sharedPendingSignals = SignalQueue()
    var storedLimits = Limits()
    public internal(set) var processGroupID: Int32 = 0
    public internal(set) var sessionID: Int32 = 0
    /// Set when the group starts exiting (exit_group, a fatal signal); the
    /// status the group reports when its last task is gone.
    var exitReason: ExitReason?
    /// Set when the last task is gone.
    public internal(set) var finished = false
    /// /proc/[pid]/oom_score_adj: kept and shown; the Sentry kills nothing by it.
    public var oomScoreAdjustment: Int32 {
        get { lock.withLock { _ in storedOOMScoreAdjustment } }
        set { lock.withLock { _ in storedOOMScoreAdjustment = newValue } }
    }
    var storedOOMScoreAdjustment: Int32 = 0
    /// ITIMER_REAL (IntervalTimers.swift): the deadline on the virtual
    /// monotonic clock (0: disarmed) and the period in ns; guarded by `lock`.
    var realTimerDeadline: Int64 = 0
    var realTimerInterval: Int64 = 0
    /// ITIMER_VIRTUAL, ITIMER_PROF and the POSIX timers (SignalTimers.swift); guarded by `lock`.
    var signalTimers = SignalTimers()
    /// Whether a CPU-time timer is armed: the one thing each trap reads
    /// (relaxed) before looking at them; written under `lock`.
    let cpuTimersArmed = Atomic<Bool>(false)
    /// When the timer thread kicks the process to look at its CPU timers
    /// (virtual CLOCK_MONOTONIC ns); guarded by `lock`.
    var cpuKickAt: Int64 = 0
    /// Woken when a signal becomes pending (signalfd's readiness).
    let signalWaiters = WaitQueue()

    public init() {}

    init(id: Int32, kernel: Kernel, parent: ThreadGroup?, limits: Limits) {
        self.id = id
        self.kernel = kernel
        self.parent = parent
        self.storedLimits = limits
        processGroupID = id
        sessionID = id
    }

    public var limits: Limits {
        get { lock.withLock { _ in storedLimits } }
        set { lock.withLock { _ in storedLimits = newValue } }
    }

    public var members: [Task] { lock.withLock { _ in tasks } }

    /// The status the group exited with, once it is finished.
    public var exitStatus: ExitReason? { lock.withLock { _ in finished ? exitReason : nil } }

    /// Whether the group is exiting (every task leaves at its next stop).
    public var isExiting: Bool { lock.withLock { _ in exitReason != nil } }

    /// Starts the group's exit with `reason` (the first reason wins, as in
    /// Linux's group_exit_code) and kicks every task out of the application.
    public func beginExit(_ reason: ExitReason) {
        let members = lock.withLock { _ -> [Task] in
            if exitReason == nil { exitReason = reason }
            return tasks
        }
        for task in members { task.interrupt() }
    }

    /// Starts the exit `signal`'s default action makes, a core dump noted
    /// when the signal dumps one and RLIMIT_CORE allows it.
    func beginExit(killedBy signal: Signal) {
        let core = signal.defaultDumpsCore && limits[.core].soft > 0
        beginExit(.killed(signal: signal.rawValue, coreDumped: core))
    }

    func add(_ task: Task) {
        lock.withLock { _ in
            tasks.append(task)
            if leader == nil { leader = task }
        }
    }

    /// Removes an exited task; returns true if it was the last one.
    func remove(_ task: Task, exitCode: Int32) -> Bool {
        lock.withLock { _ in
            tasks.removeAll { $0 === task }
            guard tasks.isEmpty else { return false }
            // A group whose last thread called exit() exits with that code.
            if exitReason == nil { exitReason = .exited(code: exitCode) }
            finished = true
            return true
        }
    }

    public func save(to sink: inout SaveSink) throws {
        let state = lock.withLock { _ in (tasks, storedLimits, exitReason, finished, storedOOMScoreAdjustment, sharedPendingSignals) }
        let timer = lock.withLock { _ in (realTimerDeadline, realTimerInterval, signalTimers) }
        try sink.save("id", id)
        try sink.save("kernel", kernel)
        try sink.save("tasks", state.0)
        try sink.save("leader", leader)
        try sink.save("parent", parent)
        try sink.save("signalHandlers", signalHandlers)
        try sink.save("limits", state.1)
        try sink.save("processGroupID", processGroupID)
        try sink.save("sessionID", sessionID)
        try sink.save("exitReason", state.2)
        try sink.save("finished", state.3)
        try sink.save("oomScoreAdjustment", state.4)
        try sink.save("sharedPendingSignals", state.5)
        try sink.save("realTimerDeadline", timer.0)
        try sink.save("realTimerInterval", timer.1)
        try sink.save("signalTimers", timer.2)
    }

    public func load(from source: inout LoadSource) throws {
        id = try source.load("id")
        kernel = try source.load("kernel")
        tasks = try source.load("tasks")
        leader = try source.load("leader")
        parent = try source.load("parent")
        signalHandlers = try source.load("signalHandlers")
        storedLimits = try source.load("limits")
        processGroupID = try source.load("processGroupID")
        sessionID = try source.load("sessionID")
        exitReason = try source.load("exitReason")
        finished = try source.load("finished")
        let adjustment: Int32 = try source.load("oomScoreAdjustment", default: 0)
        guard ProcNode.oomScoreAdjustmentRange.contains(adjustment) else {
            throw StateError.invalidValue("oom_score_adj \(adjustment) outside -1000...1000")
        }
        storedOOMScoreAdjustment = adjustment
        sharedPendingSignals = try source.load("sharedPendingSignals", default: SignalQueue())
        realTimerDeadline = try source.load("realTimerDeadline", default: 0)
        realTimerInterval = try source.load("realTimerInterval", default: 0)
        signalTimers = try source.load("signalTimers", default: SignalTimers())
        try ImageValidation.require(realTimerDeadline >= 0, field: "realTimerDeadline", "a negative timer deadline")
        try ImageValidation.require(realTimerInterval >= 0, field: "realTimerInterval", "a negative timer interval")
        try ImageValidation.processID(id, field: "id")
        try ImageValidation.processID(processGroupID, field: "processGroupID")
        try ImageValidation.processID(sessionID, field: "sessionID")
    }

    /// Every member names this group; the leader is a member.
    public func afterLoad() throws {
        let members = lock.withLock { _ in tasks }
        for (index, task) in members.enumerated() {
            try ImageValidation.require(task.threadGroup === self, field: "tasks[\(index)]",
                                        "the task belongs to another thread group")
        }
        if let leader {
            try ImageValidation.require(members.contains { $0 === leader }, field: "leader", "the leader is not a member")
        }
        // A restored process with a CPU timer armed is kicked at once to look at it.
        lock.withLock { _ in cpuTimersArmed.store(signalTimers.hasArmedCPUTimer, ordering: .relaxed) }
    }
}

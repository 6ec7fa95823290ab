import State
import Synchronization

/// A process: the tasks that share a PID, signal dispositions, limits and an
/// exit status. The first task is the leader; its TID is the group's ID.
public final class ThreadGroup: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.ThreadGroup"
    public static let notSaved: Set<String> = [
        "lock",
        "cpuTimersArmed", "cpuKickAt", // host-only, derived from signalTimers after a load (SignalTimers.swift)
        "pidfdWaiters", // host-only: pidfd pollers and epoll items; they register again after a load
        "execingTask", // host-only: set within one execve, which a checkpoint waits out
    ]
    public static let savedAs: [String: String] = [
        "storedLimits": "limits", "storedOOMScoreAdjustment": "oomScoreAdjustment",
        "storedProcessGroupID": "processGroupID", "storedSessionID": "sessionID",
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
    /// The process tree (Kernel+ProcessTree.swift): `parent`, `children`,
    /// `exitSignal`, `isChildSubreaper` and `isZombie` are guarded by the
    /// kernel's `processTree` lock. Children are kept oldest first (new and
    /// reparented ones at the end), the order wait finds them in.
    var parent: ThreadGroup?
    var children: [ThreadGroup] = []
    /// What the parent is sent at the exit (clone's CSIGNAL); 0 for none.
    var exitSignal = Signal.child
    /// PR_SET_CHILD_SUBREAPER: orphaned descendants are reparented here, not to init.
    var isChildSubreaper = false
    /// Exited, reported to the parent, not yet reaped: `exitReason` and the
    /// CPU times stay for wait; the PID stays taken until the reap.
    var isZombie = false
    public internal(set) var signalHandlers = SignalHandlers()
    /// Signals sent to the process as a whole; guarded by `lock`.
    var sharedPendingSignals = SignalQueue()
    var storedLimits = Limits()
    /// The process group and session (ThreadGroup+ProcessGroup.swift);
    /// guarded by `lock`, changed by setpgid and setsid under the PID
    /// namespace's `processGroupLock`.
    public internal(set) var processGroupID: Int32 {
        get { lock.withLock { _ in storedProcessGroupID } }
        set { lock.withLock { _ in storedProcessGroupID = newValue } }
    }
    public internal(set) var sessionID: Int32 {
        get { lock.withLock { _ in storedSessionID } }
        set { lock.withLock { _ in storedSessionID = newValue } }
    }
    var storedProcessGroupID: Int32 = 0
    var storedSessionID: Int32 = 0
    /// Stopped, continued, and what the parent's wait has yet to see
    /// (ThreadGroup+JobControl.swift); guarded by `lock`.
    var jobControl = JobControlState()
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
    /// CPU time in ns of the group's exited tasks, and of its reaped children
    /// (what RUSAGE_CHILDREN and a waiting parent add up); guarded by `lock`.
    var exitedUserTime: Int64 = 0
    var exitedSystemTime: Int64 = 0
    var childrenUserTime: Int64 = 0
    var childrenSystemTime: Int64 = 0
    /// ITIMER_VIRTUAL, ITIMER_PROF and the POSIX timers (SignalTimers.swift); guarded by `lock`.
    var signalTimers = SignalTimers()
    /// Whether a CPU-time timer is armed: the one thing each trap reads
    /// (relaxed) before looking at them; written under `lock`.
    let cpuTimersArmed = Atomic<Bool>(false)
    /// When the timer thread kicks the process to look at its CPU timers
    /// (virtual CLOCK_MONOTONIC ns); guarded by `lock`.
    var cpuKickAt: Int64 = 0
    /// Woken when the last task is gone (a pidfd's readiness).
    let pidfdWaiters = WaitQueue()

    public init() {}

    init(id: Int32, kernel: Kernel, limits: Limits) {
        self.id = id
        self.kernel = kernel
        self.storedLimits = limits
        storedProcessGroupID = id
        storedSessionID = id
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

    /// A thread that execs while others run (de_thread): the others leave
    /// at their next stop; guarded by `lock`.
    var execingTask: Task?

    /// Whether `task` must leave at its next stop: the group exits, or
    /// another thread is exec'ing.
    func mustLeave(_ task: Task) -> Bool {
        lock.withLock { _ in exitReason != nil || (execingTask != nil && execingTask !== task) }
    }

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

    /// Adds a thread made by clone; false if the group has begun its exit
    /// (the thread is not added: exit_group and a fatal signal win).
    func addThread(_ task: Task) -> Bool {
        lock.withLock { _ in
            guard exitReason == nil else { return false }
            tasks.append(task)
            return true
        }
    }

    /// Removes an exited task, keeping its CPU time; returns true if it was the last one.
    /// `signal` is what the task died of alone (a seccomp KILL_THREAD), if anything.
    func remove(_ task: Task, exitCode: Int32, killedBy signal: Signal? = nil) -> Bool {
        let core = signal.map { $0.defaultDumpsCore && limits[.core].soft > 0 } ?? false
        return lock.withLock { _ in
            tasks.removeAll { $0 === task }
            exitedUserTime = exitedUserTime.addingSaturating(task.userTime)
            exitedSystemTime = exitedSystemTime.addingSaturating(task.systemTime)
            guard tasks.isEmpty else { return false }
            // A group whose last thread called exit() exits with that code, or dies of what killed it.
            if exitReason == nil {
                exitReason = signal.map { .killed(signal: $0.rawValue, coreDumped: core) } ?? .exited(code: exitCode)
            }
            finished = true
            return true
        }
    }

    public func save(to sink: inout SaveSink) throws {
        let state = lock.withLock { _ in (tasks, storedLimits, exitReason, finished, storedOOMScoreAdjustment, sharedPendingSignals) }
        let timer = lock.withLock { _ in (realTimerDeadline, realTimerInterval, signalTimers) }
        let job = lock.withLock { _ in (storedProcessGroupID, storedSessionID, jobControl) }
        let times = lock.withLock { _ in [exitedUserTime, exitedSystemTime, childrenUserTime, childrenSystemTime] }
        let tree = withProcessTree { (parent, children, exitSignal, isChildSubreaper, isZombie) }
        try sink.save("id", id)
        try sink.save("kernel", kernel)
        try sink.save("tasks", state.0)
        try sink.save("leader", leader)
        try sink.save("parent", tree.0)
        try sink.save("children", tree.1)
        try sink.save("exitSignal", tree.2)
        try sink.save("isChildSubreaper", tree.3)
        try sink.save("isZombie", tree.4)
        try sink.save("signalHandlers", signalHandlers)
        try sink.save("limits", state.1)
        try sink.save("processGroupID", job.0)
        try sink.save("sessionID", job.1)
        try sink.save("exitReason", state.2)
        try sink.save("finished", state.3)
        try sink.save("oomScoreAdjustment", state.4)
        try sink.save("sharedPendingSignals", state.5)
        try sink.save("realTimerDeadline", timer.0)
        try sink.save("realTimerInterval", timer.1)
        try sink.save("jobControl", job.2)
        try sink.save("exitedUserTime", times[0])
        try sink.save("exitedSystemTime", times[1])
        try sink.save("childrenUserTime", times[2])
        try sink.save("childrenSystemTime", times[3])
        try sink.save("signalTimers", timer.2)
    }

    public func load(from source: inout LoadSource) throws {
        id = try source.load("id")
        kernel = try source.load("kernel")
        tasks = try source.load("tasks")
        leader = try source.load("leader")
        parent = try source.load("parent")
        children = try source.load("children", default: [])
        exitSignal = try source.load("exitSignal", default: .child)
        isChildSubreaper = try source.load("isChildSubreaper", default: false)
        isZombie = try source.load("isZombie", default: false)
        exitedUserTime = try source.load("exitedUserTime", default: 0)
        exitedSystemTime = try source.load("exitedSystemTime", default: 0)
        childrenUserTime = try source.load("childrenUserTime", default: 0)
        childrenSystemTime = try source.load("childrenSystemTime", default: 0)
        try ImageValidation.require(exitSignal.rawValue == 0 || exitSignal.isValid, field: "exitSignal",
                                    "\(exitSignal.rawValue) is not a signal")
        try ImageValidation.require(
            [exitedUserTime, exitedSystemTime, childrenUserTime, childrenSystemTime].allSatisfy { $0 >= 0 },
            field: "exitedUserTime", "negative CPU time")
        signalHandlers = try source.load("signalHandlers")
        storedLimits = try source.load("limits")
        storedProcessGroupID = try source.load("processGroupID")
        storedSessionID = try source.load("sessionID")
        exitReason = try source.load("exitReason")
        finished = try source.load("finished")
        let adjustment: Int32 = try source.load("oomScoreAdjustment", default: 0)
        guard ProcNode.oomScoreAdjustmentRange.contains(adjustment) else {
            throw StateError.invalidValue("oom_score_adj \(adjustment) outside -1000...1000", field: "oomScoreAdjustment")
        }
        storedOOMScoreAdjustment = adjustment
        sharedPendingSignals = try source.load("sharedPendingSignals", default: SignalQueue())
        realTimerDeadline = try source.load("realTimerDeadline", default: 0)
        realTimerInterval = try source.load("realTimerInterval", default: 0)
        jobControl = try source.load("jobControl", default: JobControlState())
        signalTimers = try source.load("signalTimers", default: SignalTimers())
        try ImageValidation.require(realTimerDeadline >= 0, field: "realTimerDeadline", "a negative timer deadline")
        try ImageValidation.require(realTimerInterval >= 0, field: "realTimerInterval", "a negative timer interval")
        try ImageValidation.processID(id, field: "id")
        try ImageValidation.processID(storedProcessGroupID, field: "processGroupID")
        try ImageValidation.processID(storedSessionID, field: "sessionID")
    }

    /// Every member names this group; the leader is a member; a zombie has
    /// no tasks and has finished; parent and children name each other.
    public func afterLoad() throws {
        try ImageValidation.require(!isZombie || (finished && tasks.isEmpty && exitReason != nil), field: "isZombie",
                                    "a zombie with tasks or without an exit status")
        for (index, child) in children.enumerated() {
            try ImageValidation.require(child.parent === self && child !== self, field: "children[\(index)]",
                                        "the child has another parent")
            try ImageValidation.require(!children[..<index].contains { $0 === child }, field: "children[\(index)]",
                                        "a child listed twice")
        }
        if let parent {
            try ImageValidation.require(parent.children.contains { $0 === self }, field: "parent",
                                        "the parent does not list this group as its child")
        }
        let members = lock.withLock { _ in tasks }
        for (index, task) in members.enumerated() {
            try ImageValidation.require(task.threadGroup === self, field: "tasks[\(index)]",
                                        "the task belongs to another thread group")
        }
        // A zombie keeps its exited leader, no member any more.
        // So does a live process whose leader called exit() (pthread_exit from main),
        // and a reaped one a pidfd still names.
        if let leader, !isZombie, !finished, leader.exitCode == nil {
            try ImageValidation.require(members.contains { $0 === leader }, field: "leader", "the leader is not a member")
        }
        // A restored process with a CPU timer armed is kicked at once to look at it.
        lock.withLock { _ in cpuTimersArmed.store(signalTimers.hasArmedCPUTimer, ordering: .relaxed) }
    }
}

import State

/// What a task asked of the schedulers: its nice value (setpriority), its
/// policy and real-time priority (sched_setscheduler), its I/O priority
/// (ioprio_set). Kept and reported as Linux reports them, and inherited as
/// Linux inherits them; the host schedules the Sentry's threads as it will.
public struct SchedulingAttributes: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.SchedulingAttributes"

    /// -20 (most favoured) to 19.
    public var nice: Int32 = 0
    /// SCHED_OTHER, FIFO, RR, BATCH or IDLE.
    public var policy: Int32 = LinuxScheduling.SCHED_OTHER
    /// 1...99 under FIFO and RR, else 0.
    public var realtimePriority: Int32 = 0
    /// SCHED_RESET_ON_FORK: a child starts with the default policy and a nice of at least 0.
    public var resetOnFork = false
    /// The I/O class in the top 3 bits, the level below.
    public var ioPriority: Int32 = 0
    /// sched_setaffinity's mask, bit N for CPU N; nil for every CPU.
    public var affinity: [UInt8]?

    public init() {}

    /// A clone's: the same, unless SCHED_RESET_ON_FORK puts a real-time
    /// policy back to SCHED_OTHER and a negative nice back to 0.
    func forChild() -> SchedulingAttributes {
        guard resetOnFork else { return self }
        var child = self
        if LinuxScheduling.isRealtime(policy) {
            child.policy = LinuxScheduling.SCHED_OTHER
            child.realtimePriority = 0
        }
        child.nice = max(0, nice)
        child.resetOnFork = false
        return child
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("nice", nice)
        try sink.save("policy", policy)
        try sink.save("realtimePriority", realtimePriority)
        try sink.save("resetOnFork", resetOnFork)
        try sink.save("ioPriority", ioPriority)
        try sink.save("affinity", affinity)
    }

    public init(from source: inout LoadSource) throws {
        nice = try source.load("nice")
        policy = try source.load("policy")
        realtimePriority = try source.load("realtimePriority")
        resetOnFork = try source.load("resetOnFork")
        ioPriority = try source.load("ioPriority")
        affinity = try source.load("affinity")
        try ImageValidation.require((affinity?.count ?? 0) <= 1 << 16, field: "affinity", "a mask of more than 2^19 CPUs")
        try ImageValidation.require((-20...19).contains(nice), field: "nice", "\(nice) is not a nice value")
        try ImageValidation.require(LinuxScheduling.isValid(policy), field: "policy", "\(policy) is not a policy")
        try ImageValidation.require(LinuxScheduling.isRealtime(policy) ? (1...99).contains(realtimePriority)
                                        : realtimePriority == 0,
                                    field: "realtimePriority", "\(realtimePriority) under policy \(policy)")
    }
}

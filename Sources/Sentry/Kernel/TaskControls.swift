import State

/// Per-task flags that prctl(2) and personality(2) read and write.
public struct TaskControls: SavableStruct, Equatable, Sendable {
    public static let savedTypeName = "sentry.TaskControls"

    /// Sent when the parent exits; written under the kernel's `processTree` lock.
    public var parentDeathSignal: Int32 = 0
    public var dumpable: Int32 = 1
    public var noNewPrivileges = false
    public var timerSlack: UInt64 = 50_000
    /// prctl(PR_SET_SECUREBITS), SECBIT_KEEP_CAPS among them (PR_SET_KEEPCAPS).
    public var securebits: UInt32 = 0
    /// personality(2): LinuxPersonality flags; inherited by clone, kept by exec.
    public var personality: UInt32 = LinuxPersonality.PER_LINUX

    /// Whether an exec lays the address space out at random.
    public var randomizesLayout: Bool { personality & LinuxPersonality.ADDR_NO_RANDOMIZE == 0 }

    public init() {}

    public func save(to sink: inout SaveSink) throws {
        try sink.save("parentDeathSignal", parentDeathSignal)
        try sink.save("dumpable", dumpable)
        try sink.save("noNewPrivileges", noNewPrivileges)
        try sink.save("timerSlack", timerSlack)
        try sink.save("securebits", securebits)
        try sink.save("personality", personality)
    }

    public init(from source: inout LoadSource) throws {
        parentDeathSignal = try source.load("parentDeathSignal")
        dumpable = try source.load("dumpable")
        noNewPrivileges = try source.load("noNewPrivileges")
        // PR_SET_CHILD_SUBREAPER is the process's now (ThreadGroup.isChildSubreaper).
        // Images from before had one process, with no descendants to reparent.
        source.skip("childSubreaper")
        timerSlack = try source.load("timerSlack")
        securebits = try source.load("securebits")
        // Images from before kept PR_SET_KEEPCAPS apart from the securebits.
        if try source.load("keepCapabilities", default: false) { securebits |= LinuxSecureBits.SECBIT_KEEP_CAPS }
        try ImageValidation.require(securebits & ~(LinuxSecureBits.allBits | LinuxSecureBits.allLocks) == 0,
                                    field: "securebits", "\(securebits) has bits securebits do not have")
        // Images from before personality(2) had PER_LINUX.
        personality = try source.load("personality", default: LinuxPersonality.PER_LINUX)
        try ImageValidation.require(parentDeathSignal == 0 || Signal(rawValue: parentDeathSignal).isValid,
                                    field: "parentDeathSignal", "\(parentDeathSignal) is not a signal")
        try ImageValidation.require((0...2).contains(dumpable), field: "dumpable", "\(dumpable) is not 0, 1 or 2")
    }
}

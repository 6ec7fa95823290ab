import Platform
import State
import Synchronization

/// One application thread: its registers, its view of the process (thread
/// group, memory, files, credentials) and its signal state. The registers are
/// copied in at every trap, so a Task at rest is a complete description of
/// the thread and can be saved.
///
/// A task runs on one dedicated pthread of its own (`start()`), which drives
/// its stub thread through the platform; see Task+Run.swift.
public final class Task: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.Task"
    public static let savedAs: [String: String] = ["identity": "credentials", "schedulingLock": "scheduling"]
    public static let notSaved: Set<String> = [
        "interruptLock", // a lock with the host thread to interrupt
        "waiter", // host-only: how the task's host thread blocks; a saved task re-runs its syscall and waits again
        "floatingPointNeedsLoad", // host-only: a restored task loads floatingPoint into its stub anyway
        "faultContext", // host-only: set and used within one fault's delivery, never across a checkpoint
        "thread", // host-only: the task's host thread
        "context", // host-only: the platform context the task's thread runs it in
        "waitingForChild", // host-only: a saved task is never inside a wait
        "mayHaveVforkChild", // host-only: derived from vforkChild by clone and load
        "lastFault", "repeatedFaults", // host-only: how often one fault came back in a row
        "reentered", // host-only: set at a rewound syscall's re-entry from keptForRestart
        "lastHostLookup", // host-only: a path walk's last host stat, used by the same syscall's stat
    ]

    // Immutable after creation (or load): id, kernel, threadGroup.
    // The rest is touched only by the task's own thread, except where noted.
    /// Changed only by an exec from a non-leader thread, which takes the leader's TID.
    public internal(set) var id: Int32 = 0
    public internal(set) var kernel: Kernel?
    public internal(set) var threadGroup: ThreadGroup?
    public internal(set) var mm: MemoryManager?
    /// The task's identity. Its own thread reads it at will; other threads
    /// (kill's permission check, procfs, a child's SIGCHLD) may read it while
    /// set*id replaces it, so it sits behind a leaf lock.
    private let identity = Mutex(Credentials())
    public internal(set) var credentials: Credentials {
        get { identity.withLock { $0 } }
        set { identity.withLock { $0 = newValue } }
    }
    public var fdTable = FDTable()
    public var fsContext = FSContext()

    public var registers = Registers()
    public var floatingPoint = FloatingPointState.initial()
    /// The inode and attributes the last hostfs lookup of the current path
    /// walk found (`Inode.attributesAfterWalk`); cleared when a walk starts.
    var lastHostLookup: (inode: ObjectIdentifier, attributes: FileAttributes)?
    /// Blocked signals; written under `threadGroup.lock` (senders read it).
    public internal(set) var signalMask = SignalSet.empty
    /// Signals sent to this thread (tkill, faults); guarded by `threadGroup.lock`.
    public internal(set) var pendingSignals = SignalQueue()
    /// The mask rt_sigsuspend replaced, put back when its handler returns
    /// (Linux's saved_sigmask with TIF_RESTORE_SIGMASK).
    var savedSignalMask: SignalSet?
    public var alternateSignalStack = SignalStack()
    /// set_tid_address: zeroed (and futex-woken) when the thread exits.
    public var clearChildTID: UInt64 = 0
    public var robustList: UInt64 = 0
    /// The name prctl(PR_SET_NAME) and /proc/self/comm show (at most 15 bytes).
    public var name = ""
    /// What prctl sets: parent-death signal, dumpable, no_new_privs, ...
    public var controls = TaskControls()
    /// Nice, policy, I/O priority: other tasks set them (setpriority,
    /// sched_setscheduler and ioprio_set take a PID), so behind a leaf lock.
    private let schedulingLock = Mutex(SchedulingAttributes())
    public internal(set) var scheduling: SchedulingAttributes {
        get { schedulingLock.withLock { $0 } }
        set { schedulingLock.withLock { $0 = newValue } }
    }

    /// Changes the scheduling attributes in one step under their lock.
    func updateScheduling(_ change: (inout SchedulingAttributes) -> Void) {
        schedulingLock.withLock { change(&$0) }
    }
    /// The seccomp filter checked before each syscall (the OCI profile's);
    /// a clone inherits it and an exec keeps it, as Linux's.
    public var seccomp: SeccompFilter?
    /// The filters the application installed (seccomp(2)), oldest first; inherited and kept as `seccomp`.
    public internal(set) var seccompPrograms: [SeccompProgram] = []
    /// CPU time spent in the application and in the Sentry, in nanoseconds.
    public internal(set) var userTime: Int64 = 0
    public internal(set) var systemTime: Int64 = 0
    /// The CPU time of the task's whole process, exited threads included, in nanoseconds.
    var processCPUTime: CPUTime { threadGroup?.cpuTimes ?? CPUTime(user: userTime, system: systemTime) }
    /// What restart_syscall resumes (set with ERESTART_RESTARTBLOCK).
    public var restartBlock: RestartBlock?
    /// The restart code of a syscall rewound to run again, while the
    /// application has not re-entered it (a checkpoint may park the task
    /// there): a handler delivered meanwhile ends that syscall as if it had
    /// come during it, EINTR or a restart under SA_RESTART, as Linux's
    /// freezer keeps the restart for a signal that comes while frozen.
    /// Without it, a timer firing right after a restore ran its handler
    /// and then the rewound pause(2), which waited for ever.
    var rewoundRestart: SyscallError?
    /// What the syscall the checkpoint's pause interrupted keeps for its
    /// re-entry (a timeout's deadline, the bytes a write sent, futex
    /// waiters), while it is rewound (`rewoundRestart`).
    var keptForRestart = RestartKeep()
    /// `keptForRestart`, handed to the syscall re-entered: each part taken by the call that kept it.
    var reentered = RestartKeep()
    /// Set by exit(2): the thread leaves with this code.
    var exitCode: Int32?
    /// Set with `exitCode` by a seccomp KILL_THREAD: the thread dies of this
    /// signal (do_exit(SIGSYS)), and so does its group if it is the last thread.
    var exitSignal: Signal?

    /// Host-only: how to kick the task out of the application or a wait.
    /// A leaf (see VFSLock).
    private let interruptLock = Mutex<Interrupter?>(nil)
    /// Where the task's thread blocks in the Sentry, whatever it waits for.
    public let waiter = Waiter()
    /// Host-only: rt_sigreturn set `floatingPoint` for the stub thread to load.
    var floatingPointNeedsLoad = false
    /// Host-only: the fault being delivered, for the frame's sigcontext.
    var faultContext: FaultContext?
    var thread: DedicatedThread?
    /// Host-only: the platform context while the task's thread runs it (fork reads the FP state through it).
    var context: Context?
    /// Host-only: the task sleeps in wait4/waitid; guarded by the kernel's
    /// `processTree` lock, so a child's exit cannot be missed between the
    /// look at the children and the sleep.
    var waitingForChild = false
    /// vfork: the child this task waits for until it execs or exits, and
    /// in the child the parent waiting; guarded by the kernel's `processTree` lock.
    var vforkChild: Task?
    var vforkParent: Task?
    /// Whether `vforkChild` may be set: only this task's own clone (or a
    /// load) sets it, so the run loop takes the process tree lock to look
    /// at it only while this is true, not at every syscall.
    var mayHaveVforkChild = false

    /// The last fault stop's address and instruction, and how many times in
    /// a row it came back: a fault retried as stale that keeps coming back
    /// is delivered, not retried forever.
    var lastFault: (address: UInt64, instruction: UInt64)?
    var repeatedFaults = 0

    public init() {}

    /// A new task in `group`, which it joins; its ID comes from the kernel's namespace.
    init(kernel: Kernel, group: ThreadGroup?, mm: MemoryManager, credentials: Credentials) throws(SyscallError) {
        self.kernel = kernel
        self.mm = mm
        self.credentials = credentials
        id = try kernel.pidNamespace.allocateID(for: self)
        threadGroup = group
    }

    /// The thread group's ID (getpid).
    public var processID: Int32 { threadGroup?.id ?? id }

    /// Kicks the task out of the application or a Sentry wait, so it looks at
    /// its state again (exit, checkpoint). Any thread may call this.
    public func interrupt() {
        interruptLock.withLock { $0?.interrupt() }
        interruptWaits()
    }

    /// Ends the task's current or next Sentry wait (it leaves with a restart
    /// code), without the platform's kick: for the task's own thread.
    func interruptWaits() {
        waiter.interrupt()
    }

    /// Kicks the task out of the application only, not out of a Sentry
    /// wait (a CPU-time timer may be due); false before it has a stub thread.
    func kickOutOfApplication() -> Bool {
        interruptLock.withLock { interrupter in
            interrupter?.interrupt()
            return interrupter != nil
        }
    }

    func setInterrupter(_ interrupter: Interrupter?) {
        interruptLock.withLock { $0 = interrupter }
    }

    /// Whether the task must leave at its next stop.
    var mustExit: Bool {
        exitCode != nil || (threadGroup?.mustLeave(self) ?? true)
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("id", id)
        try sink.save("kernel", kernel)
        try sink.save("threadGroup", threadGroup)
        try sink.save("mm", mm)
        try sink.save("credentials", credentials)
        try sink.save("fdTable", fdTable)
        try sink.save("fsContext", fsContext)
        try sink.save("registers", registers)
        try sink.save("floatingPoint", floatingPoint)
        try sink.save("signalMask", signalMask)
        try sink.save("alternateSignalStack", alternateSignalStack)
        try sink.save("pendingSignals", pendingSignals)
        try sink.save("savedSignalMask", savedSignalMask)
        try sink.save("clearChildTID", clearChildTID)
        try sink.save("robustList", robustList)
        try sink.save("name", name)
        try sink.save("controls", controls)
        try sink.save("scheduling", scheduling)
        try sink.save("seccomp", seccomp)
        try sink.save("seccompPrograms", seccompPrograms)
        try sink.save("userTime", userTime)
        try sink.save("systemTime", systemTime)
        try sink.save("exitCode", exitCode)
        try sink.save("exitSignal", exitSignal?.rawValue ?? 0)
        try sink.save("restartBlock", restartBlock)
        try sink.save("rewoundRestart", rewoundRestart?.rawValue ?? 0)
        try sink.save("keptForRestart", keptForRestart)
        let vfork = kernel?.processTree.withLock { _ in (vforkChild, vforkParent) } ?? (vforkChild, vforkParent)
        try sink.save("vforkChild", vfork.0)
        try sink.save("vforkParent", vfork.1)
    }

    public func load(from source: inout LoadSource) throws {
        id = try source.load("id")
        kernel = try source.load("kernel")
        threadGroup = try source.load("threadGroup")
        mm = try source.load("mm")
        credentials = try source.load("credentials")
        fdTable = try source.load("fdTable")
        fsContext = try source.load("fsContext")
        registers = try source.load("registers")
        floatingPoint = try source.load("floatingPoint")
        signalMask = try source.load("signalMask")
        alternateSignalStack = try source.load("alternateSignalStack")
        pendingSignals = try source.load("pendingSignals", default: SignalQueue())
        savedSignalMask = try source.load("savedSignalMask", default: nil)
        clearChildTID = try source.load("clearChildTID")
        robustList = try source.load("robustList")
        name = try source.load("name")
        controls = try source.load("controls")
        // Images from before kept no scheduling attributes: every task had the defaults.
        scheduling = try source.load("scheduling", default: SchedulingAttributes())
        // Images from before seccomp filters had none.
        seccomp = try source.load("seccomp", default: nil)
        seccompPrograms = try source.load("seccompPrograms", default: [])
        userTime = try source.load("userTime")
        systemTime = try source.load("systemTime")
        exitCode = try source.load("exitCode")
        // Images from before KILL_THREAD had none.
        let signal: Int32 = try source.load("exitSignal", default: 0)
        exitSignal = Signal(rawValue: signal)
        try ImageValidation.require(signal == 0 || exitSignal != nil, field: "exitSignal", "\(signal) is not a signal")
        restartBlock = try source.load("restartBlock")
        let rewound: Int32 = try source.load("rewoundRestart", default: 0)
        rewoundRestart = SyscallError(rawValue: rewound)
        try ImageValidation.require(rewound == 0 || rewoundRestart?.isRestartCode == true, field: "rewoundRestart",
                                    "\(rewound) is not a restart code")
        // Images from before it kept its parts apart, or kept none.
        if let kept: RestartKeep = try source.load("keptForRestart", default: nil) {
            keptForRestart = kept
        } else {
            keptForRestart = RestartKeep(timeout: try source.load("timeoutKeptForRestart", default: nil),
                                         written: try source.load("writtenKeptForRestart", default: nil))
            try ImageValidation.require((keptForRestart.written ?? 0) >= 0, field: "writtenKeptForRestart",
                                        "negative count")
        }
        vforkChild = try source.load("vforkChild", default: nil)
        mayHaveVforkChild = vforkChild != nil
        vforkParent = try source.load("vforkParent", default: nil)
        try ImageValidation.processID(id, field: "id")
        try ImageValidation.require(!signalMask.contains(.kill) && !signalMask.contains(.stop), field: "signalMask",
                                    "SIGKILL and SIGSTOP cannot be blocked")
        try ImageValidation.require(name.utf8.count < 16 && !name.utf8.contains(0), field: "name",
                                    "\(ImageValidation.describe(name)) is not a task name (at most 15 bytes, no NUL)")
        try ImageValidation.require(userTime >= 0 && systemTime >= 0, field: "userTime", "negative CPU time")
    }

    /// The task is one of its group's and, if it has them, of its kernel's PID namespace.
    public func afterLoad() throws {
        try ImageValidation.require(keptForRestart.futexWaiters.allSatisfy { $0.task === self }, field: "keptForRestart",
                                    "another task's futex waiter")
        if let child = vforkChild {
            try ImageValidation.require(child.vforkParent === self && child !== self, field: "vforkChild",
                                        "the vfork child does not name this task as its parent")
        }
        if let parent = vforkParent {
            try ImageValidation.require(parent.vforkChild === self, field: "vforkParent",
                                        "the vfork parent does not wait for this task")
        }
        // A zombie's leader has exited, and so has a leader that called
        // exit() while other threads run: it is no member and has no ID of
        // its own any more, and is kept for what wait and procfs show of it;
        // so does a reaped process a pidfd still names (finished, no zombie).
        let exitedLeader = threadGroup.map {
            $0.leader === self && !$0.members.contains { $0 === self } && ($0.isZombie || $0.finished || exitCode != nil)
        } ?? false
        if let group = threadGroup, !exitedLeader {
            try ImageValidation.require(group.members.contains { $0 === self }, field: "threadGroup",
                                        "the thread group does not list this task")
        }
        // An exited leader left its table to the threads still running.
        if !exitedLeader { fdTable.addUser() }
        if let kernel, !exitedLeader {
            try ImageValidation.require(kernel.pidNamespace.task(id) === self, field: "id",
                                        "the PID namespace has another task as \(id)")
            if let mm {
                try ImageValidation.require(mm.memoryFile === kernel.memoryFile, field: "mm.memoryFile",
                                            "not the kernel's memory file")
            }
        }
    }
}

import Logging
import Platform
import State
import Synchronization

/// The root of everything the Sentry knows about a sandbox: namespaces, clocks,
/// the MemoryFile, the tasks. A checkpoint saves the object graph reachable
/// from here; host-only parts (the syscall table, statistics, the logger,
/// the exit notification) are rebuilt by `afterLoad` and the Loader.
public final class Kernel: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.Kernel"
    public static let notSaved: Set<String> = [
        "syscalls", // host-only: the syscall table of this build
        "statistics", // host-only: syscall counters of this run
        "logger", // host-only: the runtime's logger
        "exitNotice", // host-only: the runtime's callbacks for the container's exit
        "processExitNotice", // host-only: the runtime's callback for every process's exit
        "pauseGate", // host-only: where running tasks park during a checkpoint
        "timers", // host-only: the thread firing interval timers, restarted by startTimers
        "processTree", // a lock (Kernel+ProcessTree.swift)
        "saveRestoreTrigger", // host-only: the save/restore test mode's syscall counter
        "signalWaiters", // host-only: signalfd readers, pollers and epoll items; they register again after a load
        "seccompLogLimit", // host-only: how many SCMP_ACT_LOG lines this run has logged lately
        "loopback", // its port table is rebuilt by the sockets after a load; saved: loopbackNextEphemeral
        "loadedFutexWaiters", // host-only: a load's queued futex waiters until afterLoad queues them
    ]
    /// The futex queues are saved as the waiters in them (each queue in order).
    public static let savedAs: [String: String] = ["futexes": "futexWaiters"]

    public private(set) var pidNamespace = PIDNamespace()
    public private(set) var uts = UTSNamespace()
    public private(set) var clocks = Clocks()
    public private(set) var memoryFile = MemoryFile()
    public var vfs: VirtualFilesystem?
    /// The container's init process (PID 1).
    public internal(set) var initThreadGroup: ThreadGroup?
    /// A random identity for /proc/sys/kernel/random/boot_id, fixed per kernel.
    public private(set) var bootID: [UInt8] = []

    /// Host-only.
    public let syscalls = SyscallTable.standard
    public private(set) var statistics = SyscallStatistics(countingEnabled: false)
    public var logger = Logger(label: "sentry")
    // `exitWaiters` is guarded by its lock, a leaf: the notices run after it (see VFSLock).
    private let exitNotice = Mutex<[@Sendable (ExitReason) -> Void]>([])
    /// Told of every thread group that finishes, with its ID: how the host
    /// learns the status of a process that has no parent in the container
    /// (one `runsc exec` started). A leaf, as `exitNotice`.
    let processExitNotice = Mutex<(@Sendable (Int32, ExitReason) -> Void)?>(nil)
    /// Where running tasks park during a checkpoint (Kernel+Pause.swift).
    let pauseGate = PauseGate()
    /// Fires the thread groups' ITIMER_REAL (IntervalTimers.swift).
    let timers = KernelTimers()
    /// Linux's tasklist_lock: guards the thread groups' parent and children
    /// links, zombie state, exit signals and subreaper marks, and the tasks'
    /// waits for children and vfork children. Taken before any ThreadGroup's
    /// `lock` and under the VFS lock (procfs), never the reverse; signals and
    /// wake-ups it decides on are sent after it is let go.
    let processTree = Mutex<Void>(())
    /// Counts syscalls for the save/restore test mode (SaveRestoreTrigger.swift).
    let saveRestoreTrigger = SaveRestoreTrigger()
    /// Futex wait queues (Syscalls+Futex.swift); at a checkpoint, the waits
    /// the pause interrupted, kept for their re-entry.
    let futexes = FutexTable()
    /// A load's `futexWaiters`, queued by `afterLoad`, once the waiters are loaded.
    private var loadedFutexWaiters: [FutexTable.Waiter] = []
    /// Woken when a signal becomes pending for any task (signalfd's
    /// readiness): a signalfd reads the signals of whichever task reads or
    /// polls it, so its waiters cannot tell in advance which process's
    /// signals concern them; each looks again at its own.
    let signalWaiters = WaitQueue()
    /// Rate limit of seccomp LOG actions' log lines.
    let seccompLogLimit = SeccompLogLimit()
    /// The loopback network of this kernel's AF_INET and AF_INET6 sockets.
    /// These three are the kernel's own from its `init()` (a load makes the
    /// kernel with it and loads the kernel before any other object): a
    /// kernel of an image from before them keeps them, and its sockets and
    /// messages, which name none, take them from the kernel being loaded
    /// (`LoadSource.kernel`).
    private(set) var loopback = LoopbackStack()
    /// The files in flight in this kernel's unix socket queues.
    private(set) var inFlightFiles = InFlightFiles()
    /// The abstract names and garbage collector of this kernel's unix sockets.
    private(set) var unixNamespace = UnixNamespace()
    /// The container's SysV shared memory segments (its IPC namespace's).
    private(set) var shm = ShmRegistry()
    /// The container's SysV semaphore sets and SEM_UNDO adjustments.
    private(set) var semaphores = SemaphoreRegistry()
    /// The container's SysV message queues.
    private(set) var messageQueues = MessageQueueRegistry()

    public init() {}

    /// A fresh kernel over `memoryFile`.
    public init(memoryFile: MemoryFile, hostName: String, countSyscalls: Bool = false, logger: Logger? = nil) {
        self.memoryFile = memoryFile
        uts = UTSNamespace(hostName: hostName)
        statistics = SyscallStatistics(countingEnabled: countSyscalls)
        if let logger { self.logger = logger }
        var random = [UInt8](repeating: 0, count: 16)
        Random.fill(&random)
        bootID = random
        clocks.startTimekeeping(publishingTo: memoryFile)
    }

    /// Sets what a loaded kernel does not carry (host-only services): the
    /// restore path calls this before starting the tasks again.
    public func configureHost(countSyscalls: Bool, logger: Logger) {
        statistics = SyscallStatistics(countingEnabled: countSyscalls)
        self.logger = logger
    }

    /// Creates a thread group with one task (not started) in `mm`, without a
    /// parent (fork links it, Task+Clone.swift). The first group created is init.
    public func createProcess(mm: MemoryManager, credentials: Credentials, limits: Limits,
                              registers: Registers = Registers(), name: String) throws(SyscallError) -> Task {
        let task = try Task(kernel: self, group: nil, mm: mm, credentials: credentials)
        let group = ThreadGroup(id: task.id, kernel: self, limits: limits)
        pidNamespace.register(group, id: task.id)
        task.threadGroup = group
        task.registers = registers
        task.name = Task.commandName(name.utf8)
        group.add(task)
        if initThreadGroup == nil { initThreadGroup = group }
        return task
    }

    /// Lets go of the pages the memory file's file cache holds (those
    /// processes share stay theirs), before a checkpoint saves the memory
    /// file's used pages: the image holds only what processes hold. With the
    /// kernel paused.
    public func releaseFileCache() {
        memoryFile.fileCache.releaseAll(memoryFile: memoryFile)
    }

    /// Runs `body` once when init's thread group has exited (at once if it has).
    public func onInitExit(_ body: @escaping @Sendable (ExitReason) -> Void) {
        if let status = initThreadGroup?.exitStatus {
            body(status)
            return
        }
        exitNotice.withLock { $0.append(body) }
        // The group may have finished between the check and the append.
        if let status = initThreadGroup?.exitStatus { notifyExit(status) }
    }

    /// Sets what runs, on the exiting task's thread, each time a thread group
    /// finishes (replacing any earlier one).
    public func onProcessExit(_ body: @escaping @Sendable (Int32, ExitReason) -> Void) {
        processExitNotice.withLock { $0 = body }
    }

    /// Moves the exit notices registered on `other`, a kernel this one
    /// replaces (the save/restore test mode), here.
    public func adoptExitNotices(from other: Kernel) {
        let moved = other.exitNotice.withLock { notices in
            defer { notices = [] }
            return notices
        }
        exitNotice.withLock { $0.append(contentsOf: moved) }
    }

    func notifyExit(_ reason: ExitReason) {
        let waiters = exitNotice.withLock { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiters { waiter(reason) }
    }

    /// Sends `signal` to every process (runsc kill, Ctrl-C forwarded to init).
    public func signalInit(_ signal: Signal) {
        initThreadGroup?.kill(with: signal)
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("pidNamespace", pidNamespace)
        try sink.save("uts", uts)
        try sink.save("clocks", clocks)
        try sink.save("memoryFile", memoryFile)
        try sink.save("vfs", vfs)
        try sink.save("initThreadGroup", initThreadGroup)
        try sink.save("bootID", bootID)
        try sink.save("loopbackNextEphemeral", Optional(loopback.nextEphemeral))
        try sink.save("inFlightFiles", Optional(inFlightFiles))
        try sink.save("unixNamespace", Optional(unixNamespace))
        try sink.save("shm", Optional(shm))
        try sink.save("semaphores", Optional(semaphores))
        try sink.save("messageQueues", Optional(messageQueues))
        try sink.save("futexWaiters", futexes.savedWaiters())
    }

    public func load(from source: inout LoadSource) throws {
        pidNamespace = try source.load("pidNamespace")
        uts = try source.load("uts")
        clocks = try source.load("clocks")
        memoryFile = try source.load("memoryFile")
        vfs = try source.load("vfs")
        initThreadGroup = try source.load("initThreadGroup")
        bootID = try source.load("bootID")
        // An image from before these fields: the kernel keeps its own, which its sockets take.
        let nextEphemeral: UInt16? = try source.load("loopbackNextEphemeral", default: nil)
        loopback = try nextEphemeral.map { try LoopbackStack(nextEphemeral: $0) } ?? loopback
        inFlightFiles = try source.load("inFlightFiles", default: nil) ?? inFlightFiles
        unixNamespace = try source.load("unixNamespace", default: nil) ?? unixNamespace
        // Images from before SysV shared memory had no segments.
        shm = try source.load("shm", default: nil) ?? shm
        semaphores = try source.load("semaphores", default: nil) ?? semaphores
        messageQueues = try source.load("messageQueues", default: nil) ?? messageQueues
        // Images from before kept no waiter: every wait queued again at its re-entry.
        loadedFutexWaiters = try source.load("futexWaiters", default: [])
    }

    /// Runs after every other object's (children first): the MemoryFile is
    /// open again, so tmpfs data can go into it, and the clocks (their
    /// offset set) can keep its vDSO data page.
    public func afterLoad() throws {
        do {
            try vfs?.attachMemoryFile(memoryFile)
        } catch {
            throw StateError.invalidValue("tmpfs data cannot be moved into the memory file: \(error)")
        }
        clocks.startTimekeeping(publishingTo: memoryFile)
        try futexes.restore(loadedFutexWaiters)
        loadedFutexWaiters = []
    }
}

extension LoadSource {
    /// The kernel an image is loading (its root, loaded before any other
    /// object): what an object of an older image that names no kernel
    /// belongs to. Nil only where something else was saved as the root.
    var kernel: Kernel? { root as? Kernel }
}

/// What procfs shows of a process, taken at the moment a file is opened.
public struct ProcessSnapshot: @unchecked Sendable { // the paths and table are guarded by their own locks
    public var processID: Int32
    public var parentProcessID: Int32
    public var name: String
    public var state: String = "S (sleeping)"
    /// The leader's IDs and capabilities, for status and who owns the files.
    public var credentials: Credentials
    public var threadCount: Int
    public var commandLine: [UInt8]
    public var executablePath: String
    /// /proc/[pid]/maps, already formatted, from a source that has it at hand
    /// (a test's); the kernel's source leaves it empty and answers `maps(of:)`.
    public var maps: String
    public var fdTable: FDTable?
    public var root: VirtualPath?
    public var workingDirectory: VirtualPath?
    /// The environment block as the process's stack holds it, NUL-separated.
    public var environment: [UInt8] = []
    /// The thread group's task IDs, for /proc/[pid]/task.
    public var threadIDs: [Int32] = []
    /// Each thread's comm (PR_SET_NAME), for task/[tid]/comm and status.
    public var threadNames: [Int32: String] = [:]
    /// Each thread's own state, for task/[tid]/stat and status (`state` is
    /// the leader's, as Linux shows it for the process).
    public var threadStates: [Int32: String] = [:]
    /// Each thread's own credentials (set*id changes one thread's), for task/[tid]/status.
    public var threadCredentials: [Int32: Credentials] = [:]
    /// The leader's nice, policy and priority, for stat; each thread's for task/[tid]/stat.
    public var scheduling = SchedulingAttributes()
    public var threadScheduling: [Int32: SchedulingAttributes] = [:]

    /// The snapshot as task/[`thread`]/stat and status show it: that
    /// thread's name and state.
    public func forThread(_ thread: Int32) -> ProcessSnapshot {
        var copy = self
        copy.state = threadStates[thread] ?? state
        copy.name = threadNames[thread] ?? name
        copy.credentials = threadCredentials[thread] ?? credentials
        copy.scheduling = threadScheduling[thread] ?? scheduling
        return copy
    }
    public var processGroupID: Int32 = 0
    public var sessionID: Int32 = 0
    /// Bytes of address space mapped (stat's vsize, statm's size).
    public var virtualBytes: UInt64 = 0
    /// Bytes of memory the process has touched (stat's and statm's rss).
    public var residentBytes: UInt64 = 0
    /// Where the program break started and where it is now.
    public var breakRange: Range<UInt64> = 0..<0
    public var stackTop: UInt64 = 0
    public var argumentRange: Range<UInt64> = 0..<0
    public var environmentRange: Range<UInt64> = 0..<0
    public var limits = Limits()
    public var oomScoreAdjustment: Int32 = 0

    public init(processID: Int32, parentProcessID: Int32, name: String, credentials: Credentials, threadCount: Int, commandLine: [UInt8], executablePath: String,
                maps: String, fdTable: FDTable?, root: VirtualPath?, workingDirectory: VirtualPath?) {
        self.processID = processID
        self.parentProcessID = parentProcessID
        self.name = name
        self.credentials = credentials
        self.threadCount = threadCount
        self.commandLine = commandLine
        self.executablePath = executablePath
        self.maps = maps
        self.fdTable = fdTable
        self.root = root
        self.workingDirectory = workingDirectory
    }
}

/// Where procfs learns about processes: the kernel (see `KernelProcSource`).
/// Not saved; the kernel attaches it again after a restore.
public protocol ProcSource: AnyObject, Sendable {
    /// Thread-group IDs in the container's PID namespace, ascending.
    func processIDs() -> [Int32]
    /// Called with the VFS lock held (path walks): must not take it, so it
    /// never names files (see `maps(of:)`).
    func snapshot(of processID: Int32) -> ProcessSnapshot?
    /// /proc/[pid]/maps: names every mapped file, which takes the VFS lock,
    /// so it is called only without it (when a file is opened).
    func maps(of processID: Int32) -> String?
    /// The mount table in mount order, for /proc/[pid]/mounts and mountinfo.
    func mounts() -> [Mount]
    /// Nanoseconds since the kernel booted, for /proc/uptime and stat's start times.
    func uptime() -> Int64
    /// The UTS namespace's host and domain names, for /proc/sys/kernel.
    func hostNames() -> (host: String, domain: String)
    /// Who owns the process's /proc files: its effective user and group.
    func owner(of processID: Int32) -> (uid: UInt32, gid: UInt32)?
    /// The process's FD table, without the cost of a whole snapshot.
    func fdTable(of processID: Int32) -> FDTable?
    /// /proc/[pid]/smaps, formatted; nil when the process is gone.
    func smaps(of processID: Int32) -> String?
    /// A write to /proc/[pid]/oom_score_adj, already parsed and range-checked.
    func setOOMScoreAdjustment(of processID: Int32, to value: Int32) throws(SyscallError)
}

extension ProcSource {
    public func owner(of processID: Int32) -> (uid: UInt32, gid: UInt32)? {
        snapshot(of: processID).map { ($0.credentials.effectiveUID, $0.credentials.effectiveGID) }
    }

    public func fdTable(of processID: Int32) -> FDTable? { snapshot(of: processID)?.fdTable }

    public func maps(of processID: Int32) -> String? { snapshot(of: processID)?.maps }

    public func smaps(of processID: Int32) -> String? { nil }
    public func setOOMScoreAdjustment(of processID: Int32, to value: Int32) throws(SyscallError) { throw .esrch }
    public func mounts() -> [Mount] { [] }
    public func uptime() -> Int64 { 0 }
    public func hostNames() -> (host: String, domain: String) { ("localhost", "(none)") }
}

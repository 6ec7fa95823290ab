/// procfs's view of a running kernel: thread groups, their memory maps,
/// argv and files. Holds the kernel weakly (the kernel owns the VFS).
public final class KernelProcSource: ProcSource, @unchecked Sendable { // immutable after init
    private weak var kernel: Kernel?

    public init(kernel: Kernel) {
        self.kernel = kernel
    }

    public func processIDs() -> [Int32] {
        guard let kernel else { return [] }
        return kernel.pidNamespace.allThreadGroups.filter { !$0.finished || $0.zombie }.map(\.id).sorted()
    }

    public func snapshot(of processID: Int32) -> ProcessSnapshot? {
        guard let group = kernel?.pidNamespace.threadGroup(processID),
              let leader = group.leader ?? group.members.first else { return nil }
        // A zombie shows its identity and state, nothing of its memory (released at its exit).
        let zombie = group.zombie
        guard !group.finished || zombie else { return nil }
        let credentials = leader.credentials
        var commandLine: [UInt8] = []
        var environment: [UInt8] = []
        var executable = ""
        var memory: (virtual: UInt64, resident: UInt64, brk: Range<UInt64>, stack: UInt64,
                     argv: Range<UInt64>, env: Range<UInt64>) = (0, 0, 0..<0, 0, 0..<0, 0..<0)
        if !zombie, let mm = leader.mm {
            let resident = mm.privatePageRuns.reduce(UInt64(0)) { $0 + ($1.end - $1.start) }
            memory = (mm.mappedBytes, resident, mm.brkStart..<max(mm.brkStart, mm.brk), mm.stackTop,
                      mm.argvRange, mm.envRange)
            let range = mm.argvRange
            if range.count > 0, range.count <= 1 << 20 {
                commandLine = (try? leader.copyIn(from: range.lowerBound, count: range.count)) ?? []
            }
            let envRange = mm.envRange
            if envRange.count > 0, envRange.count <= 1 << 20 {
                environment = (try? leader.copyIn(from: envRange.lowerBound, count: envRange.count)) ?? []
            }
            executable = mm.executablePath
        }
        var snapshot = ProcessSnapshot(
            processID: group.id, parentProcessID: group.parentID, name: leader.name,
            credentials: credentials,
            threadCount: zombie ? 1 : group.members.count, commandLine: commandLine, executablePath: executable, maps: "",
            fdTable: leader.fdTable, root: try? leader.fsContext.root(),
            workingDirectory: try? leader.fsContext.workingDirectory())
        snapshot.environment = environment
        snapshot.scheduling = leader.scheduling
        snapshot.threadIDs = zombie ? [group.id] : group.members.map(\.id).sorted()
        // As Linux: R while a thread runs or is runnable (the reader of its
        // own /proc/self is), S while it sleeps in the Sentry; the process
        // shows its leader's.
        func state(of task: Task) -> String {
            group.isStopped ? "T (stopped)" : task.waiter.isBlocked ? "S (sleeping)" : "R (running)"
        }
        if !zombie {
            for member in group.members {
                snapshot.threadNames[member.id] = member.name
                snapshot.threadStates[member.id] = state(of: member)
                snapshot.threadCredentials[member.id] = member.credentials
                snapshot.threadScheduling[member.id] = member.scheduling
            }
        }
        snapshot.state = zombie && !group.isStopped ? "Z (zombie)" : state(of: leader)
        snapshot.processGroupID = group.processGroupID
        snapshot.sessionID = group.sessionID
        snapshot.virtualBytes = memory.virtual
        snapshot.residentBytes = memory.resident
        snapshot.breakRange = memory.brk
        snapshot.stackTop = memory.stack
        snapshot.argumentRange = memory.argv
        snapshot.environmentRange = memory.env
        snapshot.limits = group.limits
        snapshot.oomScoreAdjustment = group.oomScoreAdjustment
        return snapshot
    }

    /// The VMAs are copied under the MM's lock and named after it is let go:
    /// a file's name takes the VFS lock, which mmap never holds with the MM's.
    public func maps(of processID: Int32) -> String? {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished,
              let leader = group.leader ?? group.members.first else { return nil }
        return leader.mm?.mappings.map(Self.mapsLine).joined() ?? ""
    }

    public func setOOMScoreAdjustment(of processID: Int32, to value: Int32) throws(SyscallError) {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished else { throw .esrch }
        group.oomScoreAdjustment = value
    }

    /// Each mapping's maps line and task_mmu.c's fields: the resident bytes
    /// are the process's own pages in the range; nothing is shared, swapped
    /// or huge.
    public func smaps(of processID: Int32) -> String? {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished,
              let leader = group.leader ?? group.members.first else { return nil }
        guard let mm = leader.mm else { return "" }
        let runs = mm.privatePageRuns
        return mm.mappings.map { vma in
            let resident = runs.reduce(UInt64(0)) { sum, run in
                let low = max(run.start, vma.start), high = min(run.end, vma.end)
                return high > low ? sum + (high - low) : sum
            }
            let anonymous = vma.mappedFile == nil ? resident : 0
            let sizes: [(String, UInt64)] = [
                ("Size", vma.end - vma.start), ("KernelPageSize", Page.size), ("MMUPageSize", Page.size),
                ("Rss", resident), ("Pss", resident), ("Pss_Dirty", resident), ("Shared_Clean", 0),
                ("Shared_Dirty", 0), ("Private_Clean", 0), ("Private_Dirty", resident), ("Referenced", resident),
                ("Anonymous", anonymous), ("KSM", 0), ("LazyFree", 0), ("AnonHugePages", 0), ("ShmemPmdMapped", 0),
                ("FilePmdMapped", 0), ("Shared_Hugetlb", 0), ("Private_Hugetlb", 0), ("Swap", 0), ("SwapPss", 0),
                ("Locked", 0),
            ]
            var text = Self.mapsLine(vma)
            for (name, bytes) in sizes {
                let value = String(bytes / 1024)
                text += name + ":" + String(repeating: " ", count: max(1, 23 - name.utf8.count - value.utf8.count))
                    + value + " kB\n"
            }
            return text + "THPeligible:           0\nVmFlags: " + Self.vmFlags(vma) + "\n"
        }.joined()
    }

    /// smaps's VmFlags for what a VMA records: access now, access allowed, shared, accounted.
    private static func vmFlags(_ vma: VMA) -> String {
        var flags: [String] = []
        if vma.protection.contains(.read) { flags.append("rd") }
        if vma.protection.contains(.write) { flags.append("wr") }
        if vma.protection.contains(.execute) { flags.append("ex") }
        if vma.shared { flags.append("sh") }
        if vma.maxProtection.contains(.read) { flags.append("mr") }
        if vma.maxProtection.contains(.write) { flags.append("mw") }
        if vma.maxProtection.contains(.execute) { flags.append("me") }
        if vma.shared { flags.append("ms") }
        if !vma.shared, vma.protection.contains(.write) { flags.append("ac") }
        return flags.map { $0 + " " }.joined()
    }

    public func mounts() -> [Mount] {
        guard let vfs = kernel?.vfs else { return [] }
        return VFSLock.shared.withLock { _ in vfs.mounts }
    }

    public func uptime() -> Int64 {
        kernel?.clocks.monotonic() ?? 0
    }

    public func owner(of processID: Int32) -> (uid: UInt32, gid: UInt32)? {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished,
              let leader = group.leader ?? group.members.first else { return nil }
        return (leader.credentials.effectiveUID, leader.credentials.effectiveGID)
    }

    public func fdTable(of processID: Int32) -> FDTable? {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished,
              let leader = group.leader ?? group.members.first else { return nil }
        return leader.fdTable
    }

    public func hostNames() -> (host: String, domain: String) {
        guard let uts = kernel?.uts else { return ("localhost", "(none)") }
        return (uts.hostName, uts.domainName)
    }

    /// One line of /proc/[pid]/maps, as fs/proc/task_mmu.c prints it.
    static func mapsLine(_ vma: VMA) -> String {
        let permissions = (vma.protection.contains(.read) ? "r" : "-") + (vma.protection.contains(.write) ? "w" : "-")
            + (vma.protection.contains(.execute) ? "x" : "-") + (vma.shared ? "s" : "p")
        let name = vma.mappedFile?.mappingName ?? vma.name
        let head = hex(vma.start, width: 8) + "-" + hex(vma.end, width: 8) + " " + permissions + " "
            + hex(vma.fileOffset, width: 8) + " 00:00 0"
        return name.isEmpty ? head + "\n" : head + String(repeating: " ", count: max(1, 73 - head.count)) + name + "\n"
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// procfs's view of a running kernel: thread groups, their memory maps,
/// argv and files. Holds the kernel weakly (the kernel owns the VFS).
public final class KernelProcSource: ProcSource, @unchecked Sendable { // immutable after init
    private weak var kernel: Kernel?

    public init(kernel: Kernel) {
        self.kernel = kernel
    }

    public func processIDs() -> [Int32] {
        guard let kernel else { return [] }
        return kernel.pidNamespace.allThreadGroups.filter { !$0.finished }.map(\.id).sorted()
    }

    public func snapshot(of processID: Int32) -> ProcessSnapshot? {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished,
              let leader = group.leader ?? group.members.first else { return nil }
        let credentials = leader.credentials
        var commandLine: [UInt8] = []
        var environment: [UInt8] = []
        var executable = ""
        var memory: (virtual: UInt64, resident: UInt64, brk: Range<UInt64>, stack: UInt64,
                     argv: Range<UInt64>, env: Range<UInt64>) = (0, 0, 0..<0, 0, 0..<0, 0..<0)
        if let mm = leader.mm {
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
            processID: group.id, parentProcessID: group.parent?.id ?? 0, name: leader.name,
            uids: (credentials.realUID, credentials.effectiveUID), gids: (credentials.realGID, credentials.effectiveGID),
            threadCount: group.members.count, commandLine: commandLine, executablePath: executable, maps: "",
            fdTable: leader.fdTable, root: try? leader.fsContext.root(),
            workingDirectory: try? leader.fsContext.workingDirectory())
        snapshot.environment = environment
        snapshot.threadIDs = group.members.map(\.id).sorted()
        snapshot.processGroupID = group.processGroupID
        snapshot.sessionID = group.sessionID
        snapshot.virtualBytes = memory.virtual
        snapshot.residentBytes = memory.resident
        snapshot.breakRange = memory.brk
        snapshot.stackTop = memory.stack
        snapshot.argumentRange = memory.argv
        snapshot.environmentRange = memory.env
        return snapshot
    }

    /// The VMAs are copied under the MM's lock and named after it is let go:
    /// a file's name takes the VFS lock, which mmap never holds with the MM's.
    public func maps(of processID: Int32) -> String? {
        guard let group = kernel?.pidNamespace.threadGroup(processID), !group.finished,
              let leader = group.leader ?? group.members.first else { return nil }
        return leader.mm?.mappings.map(Self.mapsLine).joined() ?? ""
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

import CShim
import Glibc
import State

/// A minimal /proc: self, mounts, [pid]/{cgroup,cmdline,comm,environ,exe,cwd,root,
/// fd/,limits,maps,mounts,mountinfo,ns/,oom_score,oom_score_adj,smaps,stat,statm,status,task/[tid]/}, meminfo, cpuinfo,
/// filesystems, stat, uptime, loadavg, version, and sys/kernel's names. Directories and links are made per lookup from
/// the `source`; a file's text is generated when it is opened and kept by
/// the open file (and saved with it), as Linux's seq files behave.
///
/// Lookups, listings and link reads run under the VFS lock: they use only the
/// source's `snapshot`, which never asks a file for its path. The text of
/// `maps`, which does, is made at open, after the walk has let the lock go.
public final class ProcFilesystem: Filesystem, @unchecked Sendable { // `source` is set once at boot or after load
    override public class var savedTypeName: String { "procfs.Filesystem" }
    override public class var notSaved: Set<String> {
        super.notSaved.union([
            "source", // set again by the kernel after load
        ])
    }
    override public var typeName: String { "proc" }
    override public var magic: Int64 { 0x9fa0 }

    public var source: ProcSource?

    public static func make(deviceNumber: UInt64) -> ProcFilesystem {
        let filesystem = ProcFilesystem()
        filesystem.deviceNumber = deviceNumber
        let inode = ProcNode()
        inode.initialize(filesystem: filesystem, mode: FileType.directory.rawValue | 0o555, uid: 0, gid: 0)
        inode.kind = .root
        filesystem.root = Dentry(name: "", parent: nil, inode: inode)
        return filesystem
    }
}

/// Every procfs inode: what it is (`kind`) and for which process.
public final class ProcNode: Inode, @unchecked Sendable { // immutable after creation
    override public class var savedTypeName: String { "procfs.Node" }

    public enum Kind: String, SavableValue, Sendable, CaseIterable {
        case root, selfLink, processDirectory, fdDirectory, fdLink, exeLink, cwdLink, rootLink
        case cmdline, comm, maps, status, meminfo, cpuinfo
        case mountsLink, mounts, mountinfo, stat, statm, uptime, loadavg, version
        case taskDirectory, threadDirectory, systemStat
        case environ, filesystems, sysDirectory, sysKernelDirectory
        case kernelHostname, kernelDomainname, kernelOsrelease, kernelOstype, kernelVersion, kernelPidMax
        case limits, cgroup, oomScoreAdjustment, oomScore, smaps, namespaceDirectory, namespaceLink
        case fdInfoDirectory, fdInfo
    }

    public var kind = Kind.root
    public var processID: Int32 = 0
    /// The FD an fd/N link or fdinfo/N file names, or the thread ID of a task/[tid] directory.
    public var fd: Int32 = 0

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("kind", kind)
        try sink.save("processID", processID)
        try sink.save("fd", fd)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        kind = try source.load("kind")
        processID = try source.load("processID")
        fd = try source.load("fd")
        try ImageValidation.require(processID >= 0 && processID < PIDNamespace.maxID, field: "processID",
                                    "\(processID) is not a PID")
        try ImageValidation.require(fd >= 0, field: "fd", "negative FD \(fd)")
    }

    private var source: ProcSource? { (filesystem as? ProcFilesystem)?.source }

    private func snapshot() throws(SyscallError) -> ProcessSnapshot {
        guard let snapshot = source?.snapshot(of: processID) else { throw .esrch }
        return snapshot
    }

    private func child(_ name: String, _ kind: Kind, in directory: Dentry, processID: Int32? = nil,
                       fd: Int32 = 0) -> Dentry {
        let node = ProcNode()
        node.kind = kind
        node.processID = processID ?? self.processID
        node.fd = fd
        let mode: UInt32
        switch kind {
        case .root, .processDirectory, .taskDirectory, .threadDirectory, .sysDirectory, .sysKernelDirectory:
            mode = FileType.directory.rawValue | 0o555
        case .fdDirectory: mode = FileType.directory.rawValue | 0o500
        case .fdInfoDirectory: mode = FileType.directory.rawValue | 0o555
        case .namespaceDirectory: mode = FileType.directory.rawValue | 0o511
        case .namespaceLink: mode = FileType.symlink.rawValue | 0o777
        case .oomScoreAdjustment: mode = FileType.regular.rawValue | 0o644
        case .selfLink, .mountsLink: mode = FileType.symlink.rawValue | 0o777
        case .exeLink, .cwdLink, .rootLink: mode = FileType.symlink.rawValue | 0o777
        case .fdLink:
            // As proc_fd_link: r-x for a readable file, -wx for a writable one.
            let file = source?.fdTable(of: node.processID)?.entry(fd)?.file
            mode = FileType.symlink.rawValue | (file?.isReadable == true ? 0o500 : 0)
                | (file?.isWritable == true ? 0o300 : 0)
        case .environ: mode = FileType.regular.rawValue | 0o400
        default: mode = FileType.regular.rawValue | 0o444
        }
        // A process's files belong to its effective user and group (so its fd/
        // and environ are its own); the rest of /proc is root's.
        let owner: (uid: UInt32, gid: UInt32) = node.processID != 0
            ? source?.owner(of: node.processID) ?? (0, 0) : (0, 0)
        if let filesystem { node.initialize(filesystem: filesystem, mode: mode, uid: owner.uid, gid: owner.gid) }
        node.inodeNumber = Self.inodeNumber(kind, processID: node.processID, fd: fd)
        return Dentry(name: name, parent: directory, inode: node)
    }

    /// The same number for a name at every lookup and in getdents64 (never 0:
    /// glibc's readdir skips entries whose d_ino is 0): the kind's ordinal,
    /// the PID above it and the FD below it.
    static func inodeNumber(_ kind: Kind, processID: Int32 = 0, fd: Int32 = 0) -> UInt64 {
        let ordinal = UInt64(Kind.allCases.firstIndex(of: kind) ?? 0) + 1
        return UInt64(UInt32(bitPattern: processID)) << 32 | ordinal << 24 | UInt64(UInt32(bitPattern: fd) & 0xff_ffff)
    }

    private static func entryType(_ kind: Kind) -> FileType {
        switch kind {
        case .root, .processDirectory, .fdDirectory, .taskDirectory, .threadDirectory, .sysDirectory,
             .sysKernelDirectory, .namespaceDirectory, .fdInfoDirectory: .directory
        case .selfLink, .fdLink, .exeLink, .cwdLink, .rootLink, .mountsLink, .namespaceLink: .symlink
        default: .regular
        }
    }

    private static let processFiles: [(String, Kind)] = [
        ("cgroup", .cgroup), ("cmdline", .cmdline), ("comm", .comm), ("cwd", .cwdLink), ("environ", .environ),
        ("exe", .exeLink), ("fd", .fdDirectory), ("fdinfo", .fdInfoDirectory), ("limits", .limits),
        ("maps", .maps), ("mountinfo", .mountinfo), ("mounts", .mounts), ("ns", .namespaceDirectory),
        ("oom_score", .oomScore), ("oom_score_adj", .oomScoreAdjustment), ("root", .rootLink), ("smaps", .smaps),
        ("stat", .stat), ("statm", .statm), ("status", .status), ("task", .taskDirectory),
    ]

    /// ns/'s links and the inode numbers they show: Linux's fixed numbers of
    /// the initial namespaces (PROC_*_INIT_INO) and, for the namespaces Linux
    /// numbers as it makes them (net, mnt), the numbers a fresh host's first
    /// ones get. One container sees one set of namespaces, so the numbers are
    /// the same at every read and across a checkpoint.
    static let namespaces: [(name: String, inode: UInt64)] = [
        ("cgroup", 0xEFFF_FFFB), ("ipc", 0xEFFF_FFFF), ("mnt", 0xF000_0001), ("net", 0xF000_0000),
        ("pid", 0xEFFF_FFFC), ("pid_for_children", 0xEFFF_FFFC), ("time", 0xEFFF_FFFA),
        ("time_for_children", 0xEFFF_FFFA), ("user", 0xEFFF_FFFD), ("uts", 0xEFFF_FFFE),
    ]
    /// A thread's directory shows its process's files (threads share them until clone exists).
    private static let threadFiles = processFiles.filter { $0.1 != .taskDirectory }
    private static let rootFiles: [(String, Kind)] = [
        ("cpuinfo", .cpuinfo), ("filesystems", .filesystems), ("loadavg", .loadavg), ("meminfo", .meminfo),
        ("mounts", .mountsLink), ("stat", .systemStat), ("sys", .sysDirectory), ("uptime", .uptime),
        ("version", .version),
    ]
    private static let sysFiles: [(String, Kind)] = [("kernel", .sysKernelDirectory)]
    private static let sysKernelFiles: [(String, Kind)] = [
        ("domainname", .kernelDomainname), ("hostname", .kernelHostname), ("osrelease", .kernelOsrelease),
        ("ostype", .kernelOstype), ("pid_max", .kernelPidMax), ("version", .kernelVersion),
    ]

    /// The fixed entries of a directory that lists only fixed entries.
    private var fixedFiles: [(String, Kind)]? {
        switch kind {
        case .sysDirectory: Self.sysFiles
        case .sysKernelDirectory: Self.sysKernelFiles
        default: nil
        }
    }

    override public func lookup(_ name: String, in directory: Dentry) throws(SyscallError) -> Dentry? {
        switch kind {
        case .root:
            if name == "self" { return child(name, .selfLink, in: directory) }
            if let entry = Self.rootFiles.first(where: { $0.0 == name }) { return child(name, entry.1, in: directory) }
            guard let pid = Int32(name), source?.snapshot(of: pid) != nil else { return nil }
            return child(name, .processDirectory, in: directory, processID: pid)
        case .processDirectory, .threadDirectory:
            let files = kind == .processDirectory ? Self.processFiles : Self.threadFiles
            guard let entry = files.first(where: { $0.0 == name }) else { return nil }
            // A thread's files know its TID (as `fd`, which they do not otherwise use).
            return child(name, entry.1, in: directory, fd: kind == .threadDirectory ? fd : 0)
        case .sysDirectory, .sysKernelDirectory:
            guard let entry = fixedFiles?.first(where: { $0.0 == name }) else { return nil }
            return child(name, entry.1, in: directory)
        case .taskDirectory:
            guard let thread = Int32(name), try snapshot().threadIDs.contains(thread) else { return nil }
            return child(name, .threadDirectory, in: directory, fd: thread)
        case .fdDirectory, .fdInfoDirectory:
            guard let number = Int32(name), source?.fdTable(of: processID)?.entry(number) != nil else { return nil }
            return child(name, kind == .fdDirectory ? .fdLink : .fdInfo, in: directory, fd: number)
        case .namespaceDirectory:
            guard let index = Self.namespaces.firstIndex(where: { $0.name == name }) else { return nil }
            return child(name, .namespaceLink, in: directory, fd: Int32(truncatingIfNeeded: index))
        default:
            throw .enotdir
        }
    }

    override public func listEntries(in directory: Dentry) throws(SyscallError) -> [DirectoryEntry] {
        switch kind {
        case .root:
            var entries = Self.rootFiles.map { name, kind in
                DirectoryEntry(name: name, inodeNumber: Self.inodeNumber(kind), type: Self.entryType(kind))
            }
            entries.append(DirectoryEntry(name: "self", inodeNumber: Self.inodeNumber(.selfLink), type: .symlink))
            entries += (source?.processIDs() ?? []).map {
                DirectoryEntry(name: String($0), inodeNumber: Self.inodeNumber(.processDirectory, processID: $0),
                               type: .directory)
            }
            return entries
        case .processDirectory, .threadDirectory:
            return (kind == .processDirectory ? Self.processFiles : Self.threadFiles).map { name, kind in
                DirectoryEntry(name: name, inodeNumber: Self.inodeNumber(kind, processID: processID),
                               type: Self.entryType(kind))
            }
        case .sysDirectory, .sysKernelDirectory:
            return (fixedFiles ?? []).map { name, kind in
                DirectoryEntry(name: name, inodeNumber: Self.inodeNumber(kind), type: Self.entryType(kind))
            }
        case .taskDirectory:
            return try snapshot().threadIDs.map {
                DirectoryEntry(name: String($0), inodeNumber: Self.inodeNumber(.threadDirectory, processID: processID,
                                                                               fd: $0),
                               type: .directory)
            }
        case .namespaceDirectory:
            return Self.namespaces.enumerated().map { index, namespace in
                DirectoryEntry(name: namespace.name,
                               inodeNumber: Self.inodeNumber(.namespaceLink, processID: processID,
                                                             fd: Int32(truncatingIfNeeded: index)),
                               type: .symlink)
            }
        case .fdDirectory, .fdInfoDirectory:
            let entryKind: Kind = kind == .fdDirectory ? .fdLink : .fdInfo
            return (try snapshot().fdTable?.descriptors ?? []).map {
                DirectoryEntry(name: String($0.fd), inodeNumber: Self.inodeNumber(entryKind, processID: processID,
                                                                                  fd: $0.fd),
                               type: Self.entryType(entryKind))
            }
        default:
            throw .enotdir
        }
    }

    override public func readLink(context: PathContext?) throws(SyscallError) -> String {
        switch kind {
        case .selfLink:
            guard let context else { throw .enoent }
            return String(context.processID)
        case .mountsLink: return "self/mounts"
        case .namespaceLink: return try namespaceLink().name
        case .exeLink: return try snapshot().executablePath
        case .cwdLink, .rootLink, .fdLink:
            guard let target = try magicTarget() else { throw .enoent }
            if let namespace = target.location?.inode as? NamespaceInode { return namespace.linkName }
            if let pipe = target.file as? PipeFile, target.location.map({ $0.dentry.parent == nil }) ?? true {
                return "pipe:[\(pipe.pipe.inodeNumber)]"
            }
            if let location = target.location {
                return VirtualFilesystem.lockedAbsolutePath(of: location) ?? "/"
            }
            if let stdio = target.file as? HostStdioFile { return "host:[\(stdio.hostFD)]" }
            if target.file is SignalFile { return "anon_inode:[signalfd]" }
            if target.file is TimerFile { return "anon_inode:[timerfd]" }
            if target.file is PidFile { return "anon_inode:[pidfd]" }
            if target.file is InotifyFile { return "anon_inode:inotify" }
            return "anon_inode:[unknown]"
        default: throw .einval
        }
    }

    /// The text of an ns/ link ("net:[4026531840]") and the number in it.
    private func namespaceLink() throws(SyscallError) -> (name: String, inode: UInt64) {
        _ = try snapshot()
        guard fd >= 0, Int(fd) < Self.namespaces.count else { throw .enoent }
        let namespace = Self.namespaces[Int(fd)]
        let type = namespace.name.hasSuffix("_for_children") ? String(namespace.name.dropLast(13)) : namespace.name
        return ("\(type):[\(namespace.inode)]", namespace.inode)
    }

    override public func magicLinkTarget(context: PathContext) throws(SyscallError) -> VirtualPath? {
        switch kind {
        case .namespaceLink:
            let link = try namespaceLink()
            return NamespaceFilesystem.target(linkName: link.name, inodeNumber: link.inode)
        case .cwdLink, .rootLink, .fdLink:
            guard let target = try magicTarget() else { return nil }
            if let location = target.location { return location }
            guard kind == .fdLink else { return nil }
            guard let filesystem else { throw .enoent }
            // An anonymous pipe opens again as a FIFO on the same pipe, a host
            // stdio file as a new description of the host's; other files without a path do not.
            if let stdio = target.file as? HostStdioFile {
                let inode = try HostStdioReopening.reopening(stdio, filesystem: filesystem)
                return VirtualPath(mount: context.root.mount,
                                   dentry: Dentry(name: "host:[\(stdio.hostFD)]", parent: nil, inode: inode))
            }
            guard let pipe = target.file as? PipeFile else { throw .enoent }
            let inode = NamedPipeInode.reopening(pipe.pipe, filesystem: filesystem, credentials: context.credentials)
            return VirtualPath(mount: context.root.mount,
                               dentry: Dentry(name: "pipe:[\(pipe.pipe.inodeNumber)]", parent: nil, inode: inode))
        default: return nil
        }
    }

    /// The place or file a magic link stands for.
    private func magicTarget() throws(SyscallError) -> (location: VirtualPath?, file: FileDescription?)? {
        let snapshot = try snapshot()
        switch kind {
        case .cwdLink: return (snapshot.workingDirectory, nil)
        case .rootLink: return (snapshot.root, nil)
        case .fdLink:
            guard let file = snapshot.fdTable?.entry(fd)?.file else { throw .enoent }
            return (file.location, file)
        default: return nil
        }
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        switch kind {
        case .root, .processDirectory, .fdDirectory, .taskDirectory, .threadDirectory, .sysDirectory,
             .sysKernelDirectory, .namespaceDirectory, .fdInfoDirectory:
            return DirectoryFile(location: location, flags: flags)
        case .selfLink, .fdLink, .exeLink, .cwdLink, .rootLink, .mountsLink, .namespaceLink: throw .eloop
        default:
            if flags & LinuxFile.accessModeMask != LinuxFile.readOnly, kind != .oomScoreAdjustment { throw .eacces }
            let file = ProcDataFile(location: location, flags: flags)
            file.setContent(try content())
            return file
        }
    }

    /// The text of a data file, generated now.
    private func content() throws(SyscallError) -> [UInt8] {
        switch kind {
        case .cmdline: return try snapshot().commandLine
        case .comm:
            let process = try snapshot()
            return Array((((fd != 0 ? process.threadNames[fd] : nil) ?? process.name) + "\n").utf8)
        case .maps:
            guard let maps = source?.maps(of: processID) else { throw .esrch }
            return Array(maps.utf8)
        case .status:
            // task/[tid]/status names the thread and shows its state.
            let whole = try snapshot()
            let thread = fd != 0 ? fd : whole.processID
            let process = fd != 0 ? whole.forThread(fd) : whole
            let c = process.credentials
            func ids(_ ids: [UInt32]) -> String { ids.map(String.init).joined(separator: "\t") }
            // Linux ends the list with a space, even an empty one.
            let groups = c.supplementaryGIDs.map(String.init).joined(separator: " ") + " "
            func capabilities(_ mask: UInt64) -> String {
                let hex = String(mask, radix: 16)
                return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
            }
            return Array("""
            Name:\t\(process.name)
            State:\t\(process.state)
            Tgid:\t\(process.processID)
            Pid:\t\(thread)
            PPid:\t\(process.parentProcessID)
            Uid:\t\(ids(c.userIDs + [c.filesystemUID]))
            Gid:\t\(ids(c.groupIDs + [c.filesystemGID]))
            Groups:\t\(groups)
            Threads:\t\(process.threadCount)
            CapInh:\t\(capabilities(c.inheritableCaps))
            CapPrm:\t\(capabilities(c.permittedCaps))
            CapEff:\t\(capabilities(c.effectiveCaps))
            CapBnd:\t\(capabilities(c.boundingCaps))
            CapAmb:\t\(capabilities(c.ambientCaps))

            """.utf8)
        case .meminfo: return Array(Self.memoryInformation().utf8)
        case .cpuinfo: return Self.hostCPUInformation
        case .mounts: return Array(ProcMountTable.mounts(source?.mounts() ?? []).utf8)
        case .mountinfo: return Array(ProcMountTable.mountInformation(source?.mounts() ?? []).utf8)
        case .stat:
            let process = try snapshot()
            if fd != 0 { return Array(ProcProcessStatistics.stat(process.forThread(fd), id: fd).utf8) }
            return Array(ProcProcessStatistics.stat(process).utf8)
        case .statm: return Array(ProcProcessStatistics.statm(try snapshot()).utf8)
        case .uptime:
            let centiseconds = max(0, source?.uptime() ?? 0) / 10_000_000
            let text = "\(centiseconds / 100).\(Self.twoDigits(centiseconds % 100))"
            return Array("\(text) \(text)\n".utf8)
        case .loadavg:
            let running = source?.processIDs().count ?? 1
            let last = source?.processIDs().last ?? 1
            return Array("0.00 0.00 0.00 1/\(running) \(last)\n".utf8)
        case .systemStat: return Array(ProcProcessStatistics.system(source).utf8)
        case .environ: return try snapshot().environment
        case .fdInfo: return Array(try fdInformation().utf8)
        case .limits: return Array(ProcProcessStatistics.limits(try snapshot().limits).utf8)
        case .cgroup:
            _ = try snapshot()
            return Array("0::/\n".utf8)
        case .oomScoreAdjustment: return Array("\(try snapshot().oomScoreAdjustment)\n".utf8)
        case .oomScore:
            _ = try snapshot()
            return Array("0\n".utf8)
        case .smaps: return Array((source?.smaps(of: processID) ?? "").utf8)
        case .filesystems:
            return Array("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\t9p\n".utf8)
        case .kernelHostname: return Array((source?.hostNames().host ?? "localhost").utf8) + [0x0a]
        case .kernelDomainname: return Array((source?.hostNames().domain ?? "(none)").utf8) + [0x0a]
        case .kernelOsrelease: return Array("\(Process.release)\n".utf8)
        case .kernelOstype: return Array("Linux\n".utf8)
        case .kernelVersion: return Array("\(Process.version)\n".utf8)
        case .kernelPidMax: return Array("\(PIDNamespace.maxID)\n".utf8)
        case .version:
            return Array("Linux version \(Process.release) (root@runsc) (gcc) \(Process.version)\n".utf8)
        default: throw .einval
        }
    }

    /// fdinfo/N (seq_show): the offset, the status flags with O_CLOEXEC for
    /// a close-on-exec descriptor, the mount ID as mountinfo numbers it (0
    /// for a file on no mount) and the inode number, then what the kind of
    /// file adds (a pidfd's Pid and NSpid: pidfd_show_fdinfo).
    private func fdInformation() throws(SyscallError) -> String {
        guard let entry = try snapshot().fdTable?.entry(fd) else { throw .enoent }
        let file = entry.file
        let flags = file.flags | (entry.closeOnExec ? LinuxFile.closeOnExec : 0)
        let offset = file.lock.withLock { _ in file.offset }
        let mount = file.location.flatMap { location in source?.mounts().firstIndex { $0 === location.mount } }
        var text = "pos:\t\(offset)\nflags:\t0\(String(flags, radix: 8))\n"
            + "mnt_id:\t\(mount.map { $0 + 1 } ?? 0)\nino:\t\(file.inode?.inodeNumber ?? 0)\n"
        if let pidfd = file as? PidFile { text += pidfd.fdInformation }
        return text
    }

    /// A write to oom_score_adj (fs/proc/base.c): at most PROC_NUMBUF - 1
    /// bytes, an integer with surrounding blanks, within OOM_SCORE_ADJ_MIN...MAX.
    func write(_ bytes: [UInt8]) throws(SyscallError) -> Int {
        guard kind == .oomScoreAdjustment, let source else { throw .eacces }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || (0x09...0x0d).contains($0) }
        let text = String(decoding: bytes.prefix(Self.numberBufferSize - 1).drop(while: isSpace)
            .reversed().drop(while: isSpace).reversed(), as: UTF8.self)
        guard let value = Int32(text), Self.oomScoreAdjustmentRange.contains(value) else { throw .einval }
        try source.setOOMScoreAdjustment(of: processID, to: value)
        return bytes.count
    }

    /// PROC_NUMBUF and OOM_SCORE_ADJ_MIN...OOM_SCORE_ADJ_MAX.
    static let numberBufferSize = 13
    static let oomScoreAdjustmentRange: ClosedRange<Int32> = -1000...1000

    private static func twoDigits(_ value: Int64) -> String {
        value < 10 ? "0\(value)" : String(value)
    }

    private static func memoryInformation() -> String {
        let page = UInt64(max(1, sysconf(Int32(_SC_PAGESIZE))))
        let total = UInt64(max(0, sysconf(Int32(_SC_PHYS_PAGES)))) * page / 1024
        let free = UInt64(max(0, sysconf(Int32(_SC_AVPHYS_PAGES)))) * page / 1024
        func line(_ name: String, _ kilobytes: UInt64) -> String {
            let value = String(kilobytes)
            return name + ":" + String(repeating: " ", count: max(1, 16 - name.count - value.count + 7)) + value
                + " kB\n"
        }
        return line("MemTotal", total) + line("MemFree", free) + line("MemAvailable", free)
            + line("Buffers", 0) + line("Cached", 0) + line("SwapTotal", 0) + line("SwapFree", 0)
    }

    /// CPU facts come from the host, as gVisor's come from CPUID; read once,
    /// before the sandbox leaves the host's root (`HostFacts.capture`).
    static let hostCPUInformation = hostFile("/proc/cpuinfo")

    private static func hostFile(_ path: String) -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = Glibc.read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            out += buffer[..<count]
        }
        return out
    }
}

/// An open procfs data file: the text generated at open, read like a file.
public final class ProcDataFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "procfs.DataFile" }
    private var content: [UInt8] = []

    func setContent(_ bytes: [UInt8]) {
        lock.withLock { _ in content = bytes }
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("content", lock.withLock { _ in content })
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let bytes: [UInt8] = try source.load("content")
        lock.withLock { _ in content = bytes }
    }

    /// seq_lseek: SEEK_SET and SEEK_CUR only.
    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 {
        guard whence == LinuxFile.seekSet || whence == LinuxFile.seekCurrent else { throw .einval }
        return try super.seek(offset, whence: whence)
    }

    /// Called with `lock` held by FileDescription.read.
    override public func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] {
        guard position >= 0 else { throw .einval }
        guard position < Int64(content.count) else { return [] }
        let start = Int(position)
        return Array(content[start..<min(content.count, start + count)])
    }

    /// Only oom_score_adj takes writes; each is one whole value, as Linux's.
    override public func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        guard let node = inode as? ProcNode else { throw .eacces }
        let written = try node.write(bytes)
        return (written, position)
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        guard let inode else { throw .ebadf }
        return try inode.attributes()
    }
}

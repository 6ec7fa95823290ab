import CShim
import Glibc

/// Process and thread IDs, exit, limits, arch_prctl, prctl, uname,
/// sysinfo, scheduling queries, robust lists.
extension SyscallTable {
    mutating func registerProcess() {
        register(60, Process.exit)
        register(231, Process.exitGroup)
        register(39) { task, _ throws(SyscallError) in Int64(task.processID) }              // getpid
        register(186) { task, _ throws(SyscallError) in Int64(task.id) }                    // gettid
        register(110) { task, _ throws(SyscallError) in Int64(task.threadGroup?.parentID ?? 0) }  // getppid
        register(111) { task, _ throws(SyscallError) in Int64(task.threadGroup?.processGroupID ?? 0) } // getpgrp
        register(121, Process.getpgid)
        register(124, Process.getsid)
        register(218, Process.setTIDAddress)
        register(158, Process.archPrctl)
        register(157, Process.prctl)
        register(135, Process.personality)
        register(63, Process.uname)
        register(170) { task, args throws(SyscallError) in try Process.setName(task, args, domain: false) } // sethostname
        register(171) { task, args throws(SyscallError) in try Process.setName(task, args, domain: true) }  // setdomainname
        register(103, Process.syslog)
        register(99, Process.sysinfo)
        register(302, Process.prlimit64)
        register(97, Process.getrlimit)
        register(160, Process.setrlimit)
        register(24) { _, _ throws(SyscallError) in sched_yield(); return 0 }               // sched_yield
        register(309, Process.getcpu)
        register(273, Process.setRobustList)
        register(274, Process.getRobustList)
        // rseq is refused on purpose: its contract is that the kernel
        // rewrites the area's cpu_id at every return to the application and
        // aborts a critical section the thread was preempted or migrated
        // in. Stub threads are preempted and migrated by the host, which the
        // ptrace platform never sees, so the Sentry could not keep either
        // promise; glibc treats ENOSYS as "no rseq" and uses getcpu.
        register(334, failingWith: .enosys)                                                 // rseq
        register(324, Process.membarrier)
        register(98, Process.getrusage)
        register(100, Process.times)
    }
}

enum Process {
    static func exit(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        task.exitCode = args.int(0) & 0xff
        return 0
    }

    static func exitGroup(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let code = args.int(0) & 0xff
        task.exitCode = code
        task.threadGroup?.beginExit(.exited(code: code))
        return 0
    }

    /// The thread group `pid` names: 0 or our own ID is us; others are looked up.
    static func group(_ task: Task, _ pid: Int32) throws(SyscallError) -> ThreadGroup {
        guard pid >= 0 else { throw .esrch }
        if pid == 0 || pid == task.processID, let own = task.threadGroup { return own }
        guard let group = task.kernel?.pidNamespace.threadGroup(pid) else { throw .esrch }
        return group
    }

    static func getpgid(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        Int64(try group(task, args.int(0)).processGroupID)
    }

    static func getsid(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        Int64(try group(task, args.int(0)).sessionID)
    }

    static func setTIDAddress(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        task.clearChildTID = args.pointer(0)
        return Int64(task.id)
    }

    static let archSetGS: Int32 = 0x1001, archSetFS: Int32 = 0x1002
    static let archGetFS: Int32 = 0x1003, archGetGS: Int32 = 0x1004
    static let archGetCPUID: Int32 = 0x1011, archSetCPUID: Int32 = 0x1012

    static func archPrctl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(1)
        switch args.int(0) {
        case archSetFS:
            guard address < MemoryManager.maxAddress else { throw .eperm }
            task.registers.fsBase = address
        case archSetGS:
            guard address < MemoryManager.maxAddress else { throw .eperm }
            task.registers.gsBase = address
        case archGetFS:
            try task.copyOut(value: task.registers.fsBase, to: address)
        case archGetGS:
            try task.copyOut(value: task.registers.gsBase, to: address)
        case archGetCPUID:
            return 1
        case archSetCPUID:
            throw .enodev
        default:
            throw .einval
        }
        return 0
    }

    /// personality(persona): returns the old personality and sets `persona`
    /// unless it is 0xffffffff (a query); Linux takes any value and never fails.
    /// ADDR_NO_RANDOMIZE takes effect at the next exec (`setarch -R`).
    static func personality(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let old = task.controls.personality
        let persona = args.uint(0)
        if persona != LinuxPersonality.query { task.controls.personality = persona }
        return Int64(old)
    }

    static func prctl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let option = args.int(0)
        switch option {
        case 1: // PR_SET_PDEATHSIG
            let signal = args.int(1)
            guard signal == 0 || Signal(rawValue: signal).isValid else { throw .einval }
            task.setParentDeathSignal(signal)
        case 2: // PR_GET_PDEATHSIG
            try task.copyOut(value: task.controls.parentDeathSignal, to: args.pointer(1))
        case 3: // PR_GET_DUMPABLE
            return Int64(task.controls.dumpable)
        case 4: // PR_SET_DUMPABLE
            guard args.uint64(1) <= 1 else { throw .einval }
            task.controls.dumpable = args.int(1)
        case 7: // PR_GET_KEEPCAPS
            return task.controls.securebits & LinuxSecureBits.SECBIT_KEEP_CAPS != 0 ? 1 : 0
        case 8: // PR_SET_KEEPCAPS
            guard args.uint64(1) <= 1 else { throw .einval }
            guard task.controls.securebits & LinuxSecureBits.SECBIT_KEEP_CAPS_LOCKED == 0 else { throw .eperm }
            if args.uint64(1) == 1 {
                task.controls.securebits |= LinuxSecureBits.SECBIT_KEEP_CAPS
            } else {
                task.controls.securebits &= ~LinuxSecureBits.SECBIT_KEEP_CAPS
            }
        case 15: // PR_SET_NAME: up to 15 bytes, silently truncated
            let raw = try copyInPrefix(task, from: args.pointer(1), maxCount: 16)
            task.name = Task.commandName(raw.prefix { $0 != 0 })
        case 16: // PR_GET_NAME
            var bytes = Array(task.name.utf8.prefix(Task.commandNameLength))
            bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
            try task.copyOut(bytes, to: args.pointer(1))
        case 21: // PR_GET_SECCOMP
            return Seccomp.mode(task)
        case 22: // PR_SET_SECCOMP: SECCOMP_MODE_FILTER (2) with the program at arg2; strict mode is not supported
            guard args.uint64(1) == UInt64(LinuxSeccomp.SECCOMP_MODE_FILTER) else { throw .einval }
            try Seccomp.setFilter(task, flags: 0, program: args.pointer(2))
        case 23: // PR_CAPBSET_READ
            let capability = args.uint64(1)
            guard capability < UInt64(CapabilitySets.count) else { throw .einval }
            return task.credentials.boundingCaps & (1 << capability) != 0 ? 1 : 0
        case 24: // PR_CAPBSET_DROP
            return try Capability.dropBounding(task, args.uint64(1))
        case 27: // PR_GET_SECUREBITS
            return Int64(task.controls.securebits)
        case 28: // PR_SET_SECUREBITS
            return try Capability.setSecurebits(task, args.uint64(1))
        case 29: // PR_SET_TIMERSLACK
            task.controls.timerSlack = args.uint64(1) == 0 ? 50_000 : args.uint64(1)
        case 30: // PR_GET_TIMERSLACK
            return Int64(bitPattern: task.controls.timerSlack)
        case 36: // PR_SET_CHILD_SUBREAPER
            task.threadGroup?.childSubreaper = args.uint64(1) != 0
        case 37: // PR_GET_CHILD_SUBREAPER
            try task.copyOut(value: Int32(task.threadGroup?.childSubreaper == true ? 1 : 0), to: args.pointer(1))
        case 38: // PR_SET_NO_NEW_PRIVS
            guard args.uint64(1) == 1, args.uint64(2) == 0, args.uint64(3) == 0, args.uint64(4) == 0 else {
                throw .einval
            }
            task.controls.noNewPrivileges = true
        case 39: // PR_GET_NO_NEW_PRIVS
            guard args.uint64(1) == 0, args.uint64(2) == 0, args.uint64(3) == 0, args.uint64(4) == 0 else {
                throw .einval
            }
            return task.controls.noNewPrivileges ? 1 : 0
        case 42: // PR_GET_THP_DISABLE
            return 0
        case 47: // PR_CAP_AMBIENT
            return try Capability.ambient(task, args)
        default:
            throw .einval
        }
        return 0
    }

    /// Reads up to `maxCount` bytes, stopping at the end of readable memory
    /// (strncpy_from_user semantics for short names).
    static func copyInPrefix(_ task: Task, from address: UInt64, maxCount: Int) throws(SyscallError) -> [UInt8] {
        let firstPage = Int(Page.size - (address & Page.mask))
        if firstPage >= maxCount { return try task.copyIn(from: address, count: maxCount) }
        let head = try task.copyIn(from: address, count: firstPage)
        if head.contains(0) { return head }
        return head + ((try? task.copyIn(from: address + UInt64(firstPage), count: maxCount - firstPage)) ?? [])
    }

    /// The kernel version we claim, as gVisor does (glibc needs >= 3.2).
    static let release = "4.4.0"
    static let version = "#1 SMP Sun Jan 10 15:06:54 PST 2016"

    static func uname(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let uts = task.kernel?.uts
        let fields = ["Linux", uts?.hostName ?? "localhost", release, version, "x86_64", uts?.domainName ?? "(none)"]
        var bytes: [UInt8] = []
        for field in fields {
            let value = Array(field.utf8.prefix(64))
            bytes += value + [UInt8](repeating: 0, count: 65 - value.count)
        }
        try task.copyOut(bytes, to: args.pointer(0))
        return 0
    }

    /// sethostname(2), setdomainname(2): the container's UTS namespace's
    /// names; CAP_SYS_ADMIN (EPERM), then at most 64 bytes (EINVAL).
    static func setName(_ task: Task, _ args: SyscallArguments, domain: Bool) throws(SyscallError) -> Int64 {
        guard task.credentials.hasCapability(LinuxCapability.CAP_SYS_ADMIN) else { throw .eperm }
        let length = args.int(1)
        guard (0...64).contains(length) else { throw .einval }
        let bytes = try task.copyIn(from: args.pointer(0), count: Int(length))
        let name = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        guard let uts = task.kernel?.uts else { return 0 }
        if domain { uts.domainName = name } else { uts.hostName = name }
        return 0
    }

    /// The container's kernel log: what dmesg shows (the host's is not the container's to read).
    static let kernelLog = Array("[    0.000000] Linux version \(release) (runsc) \(version)\n".utf8)

    /// syslog(2) on the container's own log, as Linux with dmesg_restrict
    /// (Debian's default): open and close for anyone, the buffer's size too;
    /// the rest with CAP_SYSLOG or CAP_SYS_ADMIN (EPERM). Reads give the log
    /// and clear nothing, SIZE_UNREAD is 0 (nothing new is ever logged),
    /// so SYSLOG_ACTION_READ waits as for new messages that never come.
    static func syslog(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let action = args.int(0), buffer = args.pointer(1), length = args.int(2)
        let close: Int32 = 0, open: Int32 = 1, read: Int32 = 2, readAll: Int32 = 3, readClear: Int32 = 4
        let consoleLevel: Int32 = 8, sizeUnread: Int32 = 9, sizeBuffer: Int32 = 10
        guard (close...sizeBuffer).contains(action) else { throw .einval }
        if action == close || action == open { return 0 }
        if action != sizeBuffer {
            let credentials = task.credentials
            guard credentials.hasCapability(LinuxCapability.CAP_SYSLOG)
                    || credentials.hasCapability(LinuxCapability.CAP_SYS_ADMIN) else { throw .eperm }
        }
        switch action {
        case read, readAll, readClear:
            guard buffer != 0, length >= 0 else { throw .einval }
            // Nothing is ever logged after boot: a reader of new messages waits for a signal.
            if action == read { return try Signals.waitForSignal(task, ending: .erestartsys) }
            let count = min(Int(length), kernelLog.count)
            try task.copyOut(Array(kernelLog.suffix(count)), to: buffer)
            return Int64(count)
        case consoleLevel:
            guard (1...8).contains(length) else { throw .einval }
            return 0
        case sizeUnread: return 0
        case sizeBuffer: return 1 << 17
        default: return 0
        }
    }

    static func sysinfo(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let total = UInt64(max(sysconf(Int32(_SC_PHYS_PAGES)), 0)) * Page.size
        let used = task.kernel?.memoryFile.usedBytes ?? 0
        var info = RawSysinfo()
        info.uptime = (task.kernel?.clocks.monotonic() ?? 0) / 1_000_000_000
        info.totalram = total
        info.freeram = total > used ? total - used : 0
        info.procs = UInt16(truncatingIfNeeded: task.kernel?.pidNamespace.allTasks.count ?? 1)
        info.memUnit = 1
        try task.copyOut(value: info, to: args.pointer(0))
        return 0
    }

    /// struct sysinfo on x86_64 (112 bytes).
    struct RawSysinfo: BitwiseCopyable {
        var uptime: Int64 = 0
        var loads: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var totalram: UInt64 = 0
        var freeram: UInt64 = 0
        var sharedram: UInt64 = 0
        var bufferram: UInt64 = 0
        var totalswap: UInt64 = 0
        var freeswap: UInt64 = 0
        var procs: UInt16 = 0
        var padding16: UInt16 = 0
        var padding32: UInt32 = 0
        var totalhigh: UInt64 = 0
        var freehigh: UInt64 = 0
        var memUnit: UInt32 = 0
        var tail: UInt32 = 0
    }

    /// struct rusage on x86_64: two timevals and fourteen longs (144 bytes).
    struct RawUsage: BitwiseCopyable {
        var userSeconds: Int64 = 0
        var userMicroseconds: Int64 = 0
        var systemSeconds: Int64 = 0
        var systemMicroseconds: Int64 = 0
        var maxRSS: Int64 = 0
        var rest: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

        /// CPU times given in nanoseconds.
        init(userTime: Int64, systemTime: Int64) {
            userSeconds = userTime / 1_000_000_000
            userMicroseconds = userTime % 1_000_000_000 / 1000
            systemSeconds = systemTime / 1_000_000_000
            systemMicroseconds = systemTime % 1_000_000_000 / 1000
        }
    }

    /// struct rlimit64 / struct rlimit on x86_64: two u64s.
    struct RawLimit: BitwiseCopyable {
        var soft: UInt64
        var hard: UInt64
    }

    /// Linux's nr_open: RLIMIT_NOFILE can never go above it.
    static let maxOpenFiles: UInt64 = 1_048_576

    static func prlimit64(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let resource = Limits.Resource(rawValue: Int(args.uint(1))) else { throw .einval }
        var newLimit: RawLimit?
        if args.pointer(2) != 0 { newLimit = try task.copyIn(RawLimit.self, from: args.pointer(2)) }
        let group = try Process.group(task, args.int(0))
        return try setLimit(task, group, resource, newLimit, old: args.pointer(3))
    }

    static func getrlimit(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let resource = Limits.Resource(rawValue: Int(args.uint(0))), let group = task.threadGroup else {
            throw .einval
        }
        let limit = group.limits[resource]
        try task.copyOut(value: RawLimit(soft: limit.soft, hard: limit.hard), to: args.pointer(1))
        return 0
    }

    static func setrlimit(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard let resource = Limits.Resource(rawValue: Int(args.uint(0))), let group = task.threadGroup else {
            throw .einval
        }
        let newLimit = try task.copyIn(RawLimit.self, from: args.pointer(1))
        return try setLimit(task, group, resource, newLimit, old: 0)
    }

    static func setLimit(_ task: Task, _ group: ThreadGroup, _ resource: Limits.Resource,
                         _ newLimit: RawLimit?, old: UInt64) throws(SyscallError) -> Int64 {
        let current = group.limits[resource]
        if let newLimit {
            guard newLimit.soft <= newLimit.hard else { throw .einval }
            if newLimit.hard > current.hard && !task.credentials.hasCapability(24) { throw .eperm }
            if resource == .nofile && newLimit.hard > maxOpenFiles { throw .eperm }
        }
        if old != 0 { try task.copyOut(value: RawLimit(soft: current.soft, hard: current.hard), to: old) }
        if let newLimit {
            var limits = group.limits
            limits[resource] = Limits.Limit(soft: newLimit.soft, hard: newLimit.hard)
            group.limits = limits
        }
        return 0
    }

    /// membarrier(2): the commands glibc's and the JVM's users need. Every
    /// barrier is the host's MEMBARRIER_CMD_GLOBAL, which waits until every
    /// host CPU has passed a barrier: the application's threads are stub
    /// threads of another host process, so the host's private and expedited
    /// forms, which reach only the caller's own process, would not cover them.
    static func membarrier(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let command = args.int(0)
        guard args.uint(1) == 0 else { throw .einval }
        let supported = LinuxMembarrier.MEMBARRIER_CMD_GLOBAL | LinuxMembarrier.MEMBARRIER_CMD_GLOBAL_EXPEDITED
            | LinuxMembarrier.MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | LinuxMembarrier.MEMBARRIER_CMD_PRIVATE_EXPEDITED
            | LinuxMembarrier.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        let mm = try task.memory()
        switch command {
        case LinuxMembarrier.MEMBARRIER_CMD_QUERY:
            return Int64(supported)
        case LinuxMembarrier.MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED:
            return 0
        case LinuxMembarrier.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED:
            mm.lock.withLock { _ in mm.membarrierPrivateRegistered = true }
            return 0
        case LinuxMembarrier.MEMBARRIER_CMD_PRIVATE_EXPEDITED:
            guard mm.lock.withLock({ _ in mm.membarrierPrivateRegistered }) else { throw .eperm }
            try hostMembarrier()
            return 0
        case LinuxMembarrier.MEMBARRIER_CMD_GLOBAL, LinuxMembarrier.MEMBARRIER_CMD_GLOBAL_EXPEDITED:
            try hostMembarrier()
            return 0
        default:
            throw .einval
        }
    }

    private static func hostMembarrier() throws(SyscallError) {
        let result = cshim_membarrier_global()
        if result < 0 { throw SyscallError.fromHost(-result) }
    }


    static func getcpu(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        if args.pointer(0) != 0 { try task.copyOut(value: UInt32(0), to: args.pointer(0)) }
        if args.pointer(1) != 0 { try task.copyOut(value: UInt32(0), to: args.pointer(1)) }
        return 0
    }

    /// sizeof(struct robust_list_head) on x86_64.
    static let robustListHeadSize: UInt64 = 24

    static func setRobustList(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.uint64(1) == robustListHeadSize else { throw .einval }
        task.robustList = args.pointer(0)
        return 0
    }

    /// get_robust_list: another thread's head only under the ptrace
    /// read-access rule (EPERM); the length is written before the head.
    static func getRobustList(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let target: Task
        if args.int(0) == 0 {
            target = task
        } else {
            guard let found = task.kernel?.pidNamespace.task(args.int(0)) else { throw .esrch }
            target = found
        }
        guard task.mayReadAsTracer(target) else { throw .eperm }
        try task.copyOut(value: robustListHeadSize, to: args.pointer(2))
        try task.copyOut(value: target.robustList, to: args.pointer(1))
        return 0
    }

    static func getrusage(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let who = args.int(0)
        guard who == 0 || who == -1 || who == 1 else { throw .einval }
        var usage: RawUsage
        if who == -1 {
            let (user, system) = task.threadGroup?.reapedChildrenCPUTime ?? (0, 0)
            usage = RawUsage(userTime: user, systemTime: system)
        } else {
            let time = who == 1 ? CPUTime(user: task.userTime, system: task.systemTime) : task.processCPUTime
            usage = RawUsage(userTime: time.user, systemTime: time.system)
            usage.maxRSS = Int64((task.kernel?.memoryFile.usedBytes ?? 0) / 1024)
        }
        try task.copyOut(value: usage, to: args.pointer(1))
        return 0
    }

    /// Clock ticks per second (AT_CLKTCK, times(2)).
    static let ticksPerSecond: Int64 = 100
    static let nanosecondsPerTick: Int64 = 1_000_000_000 / ticksPerSecond

    static func times(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let toTicks = { (nanoseconds: Int64) in nanoseconds / nanosecondsPerTick }
        if args.pointer(0) != 0 {
            let time = task.processCPUTime
            let (user, system) = (time.user, time.system)
            let (childUser, childSystem) = task.threadGroup?.reapedChildrenCPUTime ?? (0, 0)
            try task.copyOut(value: (toTicks(user), toTicks(system), toTicks(childUser), toTicks(childSystem)),
                             to: args.pointer(0))
        }
        return toTicks(task.kernel?.clocks.monotonic() ?? 0)
    }
}

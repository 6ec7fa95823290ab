/// Scheduling attributes (kernel/sys.c's priorities, kernel/sched/syscalls.c,
/// block/ioprio.c): nice values, policies and real-time priorities, CPU
/// affinity and I/O priorities, kept per task (SchedulingAttributes) with
/// Linux's permission rules and reported back as set.
extension SyscallTable {
    mutating func registerScheduling() {
        register(140, Scheduling.getpriority)
        register(141, Scheduling.setpriority)
        register(144) { task, args throws(SyscallError) in                                  // sched_setscheduler
            try Scheduling.setScheduler(task, pid: args.int(0), policy: args.int(1), parameter: args.pointer(2))
        }
        register(142) { task, args throws(SyscallError) in                                  // sched_setparam
            try Scheduling.setScheduler(task, pid: args.int(0), policy: nil, parameter: args.pointer(1))
        }
        register(145, Scheduling.getScheduler)
        register(143, Scheduling.getParameter)
        register(146) { _, args throws(SyscallError) in                                     // sched_get_priority_max
            try Scheduling.priorityBound(args.int(0), realtime: LinuxScheduling.maxRealtimePriority)
        }
        register(147) { _, args throws(SyscallError) in                                     // sched_get_priority_min
            try Scheduling.priorityBound(args.int(0), realtime: 1)
        }
        register(148, Scheduling.roundRobinInterval)
        register(204, Scheduling.getAffinity)
        register(203, Scheduling.setAffinity)
        register(251, Scheduling.ioprioSet)
        register(252, Scheduling.ioprioGet)
    }
}

enum Scheduling {
    /// The task `pid` names for the sched_* calls: 0 is the caller; EINVAL
    /// for a negative PID, ESRCH for no such task.
    static func target(_ task: Task, _ pid: Int32) throws(SyscallError) -> Task {
        guard pid >= 0 else { throw .einval }
        if pid == 0 { return task }
        guard let target = task.kernel?.pidNamespace.task(pid) else { throw .esrch }
        return target
    }

    /// The tasks setpriority, getpriority and the ioprio calls reach: one
    /// task (0: the caller), every thread of a process group (0: the
    /// caller's), or every task of a real user (0: the caller's).
    static func targets(_ task: Task, process: Bool, group: Bool, who: Int32) -> [Task] {
        guard let namespace = task.kernel?.pidNamespace else { return process && who == 0 ? [task] : [] }
        if process {
            if who == 0 { return [task] }
            return namespace.task(who).map { [$0] } ?? []
        }
        let threads = namespace.allThreadGroups.flatMap(\.members)
        if group {
            let processGroup = who == 0 ? (task.threadGroup?.processGroupID ?? 0) : who
            return threads.filter { $0.threadGroup?.processGroupID == processGroup }
        }
        let user = who == 0 ? task.credentials.realUID : UInt32(bitPattern: who)
        return threads.filter { $0.credentials.realUID == user }
    }

    /// check_same_owner: the caller's effective UID is the target's real or effective one.
    static func sameOwner(_ task: Task, _ target: Task) -> Bool {
        let mine = task.credentials.effectiveUID, theirs = target.credentials
        return mine == theirs.effectiveUID || mine == theirs.realUID
    }

    static func mayNice(_ task: Task) -> Bool { task.credentials.hasCapability(LinuxCapability.CAP_SYS_NICE) }

    /// getpriority(2): 20 minus the lowest nice value among the targets
    /// (glibc turns it back into a nice value); ESRCH when there are none.
    static func getpriority(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let which = args.int(0)
        guard (LinuxScheduling.PRIO_PROCESS...LinuxScheduling.PRIO_USER).contains(which) else { throw .einval }
        let found = targets(task, process: which == LinuxScheduling.PRIO_PROCESS,
                            group: which == LinuxScheduling.PRIO_PGRP, who: args.int(1))
        guard let lowest = found.map({ $0.scheduling.nice }).min() else { throw .esrch }
        return Int64(20 - lowest)
    }

    /// setpriority(2), as set_one_prio for each target: the value clamped to
    /// -20...19; EPERM for another user's task without CAP_SYS_NICE, EACCES
    /// for a lower nice than RLIMIT_NICE allows; the last failure, or 0
    /// once one target took it.
    static func setpriority(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let which = args.int(0)
        guard (LinuxScheduling.PRIO_PROCESS...LinuxScheduling.PRIO_USER).contains(which) else { throw .einval }
        let nice = min(max(args.int(2), -20), 19)
        var error: SyscallError? = .esrch
        for target in targets(task, process: which == LinuxScheduling.PRIO_PROCESS,
                              group: which == LinuxScheduling.PRIO_PGRP, who: args.int(1)) {
            guard sameOwner(task, target) || mayNice(task) else {
                error = .eperm
                continue
            }
            let allowed = target.threadGroup?.limits[.nice].soft ?? 0
            if nice < target.scheduling.nice, UInt64(20 - nice) > allowed, !mayNice(task) {
                error = .eacces
                continue
            }
            if error == .esrch { error = nil }
            target.updateScheduling { $0.nice = nice }
        }
        if let error { throw error }
        return 0
    }

    /// sched_setscheduler and sched_setparam (`policy` nil: the current
    /// one), as __sched_setscheduler checks: a known policy, a priority of
    /// 1...99 for FIFO and RR and 0 for the others, then EPERM without
    /// CAP_SYS_NICE for another user's task, a real-time policy or priority
    /// beyond RLIMIT_RTPRIO, leaving SCHED_IDLE beyond RLIMIT_NICE, or
    /// clearing SCHED_RESET_ON_FORK.
    static func setScheduler(_ task: Task, pid: Int32, policy requested: Int32?,
                             parameter: UInt64) throws(SyscallError) -> Int64 {
        guard parameter != 0, pid >= 0 else { throw .einval }
        let priority = try task.copyIn(Int32.self, from: parameter)
        let target = try target(task, pid)
        let current = target.scheduling
        var policy = requested ?? current.policy
        var resetOnFork = current.resetOnFork
        if let requested {
            resetOnFork = requested & LinuxScheduling.SCHED_RESET_ON_FORK != 0
            policy = requested & ~LinuxScheduling.SCHED_RESET_ON_FORK
        }
        guard LinuxScheduling.isValid(policy), priority >= 0, priority <= LinuxScheduling.maxRealtimePriority,
              LinuxScheduling.isRealtime(policy) == (priority != 0) else { throw .einval }
        if !mayNice(task) {
            let limits = target.threadGroup?.limits ?? Limits()
            let realtimeLimit = limits[.rtprio].soft
            var privileged = !sameOwner(task, target) || (current.resetOnFork && !resetOnFork)
            if LinuxScheduling.isRealtime(policy) {
                if policy != current.policy && realtimeLimit == 0 { privileged = true }
                if priority > current.realtimePriority && UInt64(priority) > realtimeLimit { privileged = true }
            }
            if current.policy == LinuxScheduling.SCHED_IDLE, policy != LinuxScheduling.SCHED_IDLE,
               UInt64(20 - current.nice) > limits[.nice].soft {
                privileged = true
            }
            if privileged { throw .eperm }
        }
        target.updateScheduling { attributes in
            attributes.policy = policy
            attributes.realtimePriority = priority
            attributes.resetOnFork = resetOnFork
        }
        return 0
    }

    static func getScheduler(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let attributes = try target(task, args.int(0)).scheduling
        return Int64(attributes.policy | (attributes.resetOnFork ? LinuxScheduling.SCHED_RESET_ON_FORK : 0))
    }

    static func getParameter(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        guard args.pointer(1) != 0, args.int(0) >= 0 else { throw .einval }
        try task.copyOut(value: try target(task, args.int(0)).scheduling.realtimePriority, to: args.pointer(1))
        return 0
    }

    /// sched_get_priority_max/min: FIFO and RR have `realtime`; OTHER,
    /// BATCH, IDLE and DEADLINE have 0.
    static func priorityBound(_ policy: Int32, realtime: Int32) throws(SyscallError) -> Int64 {
        guard LinuxScheduling.isValid(policy) || policy == LinuxScheduling.SCHED_DEADLINE else { throw .einval }
        return LinuxScheduling.isRealtime(policy) ? Int64(realtime) : 0
    }

    /// sched_rr_get_interval(2): SCHED_RR's time slice; 0 for FIFO and the
    /// fair policies (whose slice Linux computes from the load; none here).
    static func roundRobinInterval(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let target = try target(task, args.int(0))
        let slice = target.scheduling.policy == LinuxScheduling.SCHED_RR ? LinuxScheduling.roundRobinSliceNanoseconds : 0
        try task.copyOut(value: (Int64(0), slice), to: args.pointer(1))
        return 0
    }

    static var cpuCount: Int { HostFacts.onlineCPUs }
    /// The mask's bytes for the CPUs there are, in whole unsigned longs.
    static var maskSize: Int { (cpuCount + 63) / 64 * 8 }

    /// sched_getaffinity(2): the task's mask (every CPU until set), in a
    /// buffer of whole unsigned longs at least as long as the kernel's mask;
    /// returns the bytes written.
    static func getAffinity(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let target = try target(task, args.int(0))
        let size = args.uint64(1)
        guard size >= UInt64(maskSize), size & 7 == 0 else { throw .einval }
        var mask = [UInt8](repeating: 0, count: maskSize)
        let allowed = target.scheduling.affinity
        for cpu in 0..<cpuCount where allowed.map({ cpu < $0.count * 8 && $0[cpu / 8] & 1 << UInt8(cpu % 8) != 0 }) ?? true {
            mask[cpu / 8] |= 1 << UInt8(cpu % 8)
        }
        try task.copyOut(mask, to: args.pointer(2))
        return Int64(maskSize)
    }

    /// sched_setaffinity(2): the mask, cut to the CPUs there are, must
    /// name one of them (EINVAL); another user's task needs CAP_SYS_NICE.
    static func setAffinity(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let target = try target(task, args.int(0))
        let size = min(Int(truncatingIfNeeded: min(args.uint64(1), 1 << 16)), maskSize)
        guard size > 0 else { throw .einval }
        var mask = try task.copyIn(from: args.pointer(2), count: size)
        for cpu in 0..<mask.count * 8 where cpu >= cpuCount { mask[cpu / 8] &= ~(1 << UInt8(cpu % 8)) }
        guard mask.contains(where: { $0 != 0 }) else { throw .einval }
        guard sameOwner(task, target) || mayNice(task) else { throw .eperm }
        target.updateScheduling { $0.affinity = mask }
        return 0
    }

    /// ioprio_set(2): the class and level checked (RT needs CAP_SYS_NICE or
    /// CAP_SYS_ADMIN; NONE has only level 0), then each
    /// target's, EPERM for another user's without CAP_SYS_NICE.
    static func ioprioSet(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let which = args.int(0), who = args.int(1), priority = args.int(2)
        // Since Linux 6.5 the data holds a level in its low 3 bits and hints above them.
        let ioClass = priority >> LinuxScheduling.IOPRIO_CLASS_SHIFT
        let level = priority & (LinuxScheduling.ioPriorityLevels - 1)
        switch ioClass {
        case LinuxScheduling.IOPRIO_CLASS_RT, LinuxScheduling.IOPRIO_CLASS_BE:
            if ioClass == LinuxScheduling.IOPRIO_CLASS_RT, !mayNice(task),
               !task.credentials.hasCapability(LinuxCapability.CAP_SYS_ADMIN) { throw .eperm }
        case LinuxScheduling.IOPRIO_CLASS_IDLE: break
        case LinuxScheduling.IOPRIO_CLASS_NONE: guard level == 0 else { throw .einval }
        default: throw .einval
        }
        let found = try ioTargets(task, which: which, who: who)
        guard !found.isEmpty else { throw .esrch }
        for target in found {
            let theirs = target.credentials, mine = task.credentials
            guard theirs.realUID == mine.effectiveUID || theirs.realUID == mine.realUID || mayNice(task) else {
                throw .eperm
            }
            target.updateScheduling { $0.ioPriority = priority }
        }
        return 0
    }

    /// ioprio_get(2): a task's priority; for a group or user, the best of
    /// theirs (the lowest class, then level, a NONE counting as BE level 4).
    static func ioprioGet(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let found = try ioTargets(task, which: args.int(0), who: args.int(1))
        guard !found.isEmpty else { throw .esrch }
        if args.int(0) == LinuxScheduling.IOPRIO_WHO_PROCESS { return Int64(found[0].scheduling.ioPriority) }
        func rank(_ priority: Int32) -> Int32 {
            priority >> LinuxScheduling.IOPRIO_CLASS_SHIFT == LinuxScheduling.IOPRIO_CLASS_NONE
                ? LinuxScheduling.IOPRIO_CLASS_BE << LinuxScheduling.IOPRIO_CLASS_SHIFT | 4 : priority
        }
        return Int64(found.map { $0.scheduling.ioPriority }.min { rank($0) < rank($1) } ?? 0)
    }

    private static func ioTargets(_ task: Task, which: Int32, who: Int32) throws(SyscallError) -> [Task] {
        switch which {
        case LinuxScheduling.IOPRIO_WHO_PROCESS: return targets(task, process: true, group: false, who: who)
        case LinuxScheduling.IOPRIO_WHO_PGRP: return targets(task, process: false, group: true, who: who)
        case LinuxScheduling.IOPRIO_WHO_USER: return targets(task, process: false, group: false, who: who)
        default: throw .einval
        }
    }
}

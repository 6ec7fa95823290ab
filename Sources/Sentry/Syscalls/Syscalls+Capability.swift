/// capget and capset (kernel/capability.c), and prctl's capability and
/// securebits operations (security/commoncap.c).
extension SyscallTable {
    mutating func registerCapability() {
        register(125, Capability.capget)
        register(126, Capability.capset)
    }
}

enum Capability {
    static let version1 = LinuxCapability.version1, version2 = LinuxCapability.version2
    static let version3 = LinuxCapability.version3

    /// cap_validate_magic: how many 32-bit words each set takes in the
    /// header's version; an unknown version is answered with the preferred
    /// one written back, and EINVAL.
    private static func words(_ task: Task, header: UInt64) throws(SyscallError) -> Int? {
        switch try task.copyIn(UInt32.self, from: header) {
        case version1: return 1
        case version2, version3: return 2
        default:
            try task.copyOut(value: version3, to: header)
            return nil
        }
    }

    /// capget(2) in Linux's order: an unknown version is answered with the
    /// preferred one and EINVAL (0 when `datap` is NULL: a version probe);
    /// EINVAL for a negative PID, ESRCH for a missing task; then the
    /// effective, permitted and inheritable sets, one or two 32-bit words each.
    static func capget(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let header = args.pointer(0), data = args.pointer(1)
        guard let words = try words(task, header: header) else {
            if data == 0 { return 0 }
            throw .einval
        }
        if data == 0 { return 0 }
        let processID = try task.copyIn(Int32.self, from: header + 4)
        guard processID >= 0 else { throw .einval }
        var target = task
        if processID != 0, processID != task.id {
            guard let other = task.kernel?.pidNamespace.task(processID) else { throw .esrch }
            target = other
        }
        let credentials = target.credentials
        var out: [UInt32] = []
        for word in 0..<words {
            let shift = UInt64(32 * word)
            out += [UInt32(truncatingIfNeeded: credentials.effectiveCaps >> shift),
                    UInt32(truncatingIfNeeded: credentials.permittedCaps >> shift),
                    UInt32(truncatingIfNeeded: credentials.inheritableCaps >> shift)]
        }
        try task.copyOut(out.withUnsafeBytes { Array($0) }, to: data)
        return 0
    }

    /// capset(2): only the caller's own sets (EPERM for another PID). The
    /// new inheritable set within the old inheritable and permitted ones
    /// (unless CAP_SETPCAP) and within the old inheritable and bounding
    /// ones; the permitted set within the old; the effective within the new
    /// permitted.
    static func capset(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let header = args.pointer(0), data = args.pointer(1)
        guard let words = try words(task, header: header) else { throw .einval }
        let processID = try task.copyIn(Int32.self, from: header + 4)
        guard processID == 0 || processID == task.id else { throw .eperm }
        let raw = try task.copyIn(from: data, count: words * 12)
        func set(_ index: Int) -> UInt64 {
            var value: UInt64 = 0
            for word in 0..<words {
                let offset = word * 12 + index * 4
                value |= UInt64(raw.littleEndian(UInt32.self, at: offset)) << UInt64(32 * word)
            }
            return value
        }
        let (effective, permitted, inheritable) = (set(0), set(1), set(2))
        let old = task.credentials
        if !old.hasCapability(LinuxCapability.CAP_SETPCAP),
           inheritable & ~(old.inheritableCaps | old.permittedCaps) != 0 { throw .eperm }
        guard inheritable & ~(old.inheritableCaps | old.boundingCaps) == 0,
              permitted & ~old.permittedCaps == 0, effective & ~permitted == 0 else { throw .eperm }
        task.commitCredentials(old.settingCapabilities(effective: effective, permitted: permitted,
                                                       inheritable: inheritable))
        return 0
    }

    /// prctl(PR_CAPBSET_DROP): CAP_SETPCAP takes a capability out of the bounding set.
    static func dropBounding(_ task: Task, _ capability: UInt64) throws(SyscallError) -> Int64 {
        guard capability < UInt64(CapabilitySets.count) else { throw .einval }
        let old = task.credentials
        guard old.hasCapability(LinuxCapability.CAP_SETPCAP) else { throw .eperm }
        task.commitCredentials(old.settingBoundingAndAmbient(bounding: old.boundingCaps & ~(1 << capability),
                                                             ambient: old.ambientCaps))
        return 0
    }

    /// prctl(PR_CAP_AMBIENT): IS_SET, RAISE (a capability both permitted and
    /// inheritable, unless SECBIT_NO_CAP_AMBIENT_RAISE), LOWER, CLEAR_ALL.
    static func ambient(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let operation = args.uint64(1), capability = args.uint64(2)
        let old = task.credentials
        if operation == LinuxCapability.PR_CAP_AMBIENT_CLEAR_ALL {
            guard args.uint64(2) | args.uint64(3) | args.uint64(4) == 0 else { throw .einval }
            task.commitCredentials(old.settingBoundingAndAmbient(bounding: old.boundingCaps, ambient: 0))
            return 0
        }
        guard capability < UInt64(CapabilitySets.count), args.uint64(3) | args.uint64(4) == 0 else {
            throw .einval
        }
        let bit: UInt64 = 1 << capability
        switch operation {
        case LinuxCapability.PR_CAP_AMBIENT_IS_SET:
            return old.ambientCaps & bit != 0 ? 1 : 0
        case LinuxCapability.PR_CAP_AMBIENT_RAISE:
            guard old.permittedCaps & bit != 0, old.inheritableCaps & bit != 0,
                  task.controls.securebits & LinuxSecureBits.SECBIT_NO_CAP_AMBIENT_RAISE == 0 else { throw .eperm }
            task.commitCredentials(old.settingBoundingAndAmbient(bounding: old.boundingCaps,
                                                                 ambient: old.ambientCaps | bit))
        case LinuxCapability.PR_CAP_AMBIENT_LOWER:
            task.commitCredentials(old.settingBoundingAndAmbient(bounding: old.boundingCaps,
                                                                 ambient: old.ambientCaps & ~bit))
        default:
            throw .einval
        }
        return 0
    }

    /// prctl(PR_SET_SECUREBITS): CAP_SETPCAP, known bits only, no locked
    /// bit changed and no lock taken off.
    static func setSecurebits(_ task: Task, _ value: UInt64) throws(SyscallError) -> Int64 {
        let old = task.controls.securebits
        let known = UInt64(LinuxSecureBits.allBits | LinuxSecureBits.allLocks)
        guard value & ~known == 0 else { throw .eperm }
        let new = UInt32(value)
        let locked = (old & LinuxSecureBits.allLocks) >> 1
        guard locked & (old ^ new) == 0, old & LinuxSecureBits.allLocks & ~new == 0,
              task.credentials.hasCapability(LinuxCapability.CAP_SETPCAP) else { throw .eperm }
        task.controls.securebits = new
        return 0
    }
}

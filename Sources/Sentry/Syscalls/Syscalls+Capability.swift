/// capget (kernel/capability.c): the capability sets the spec gave a task.
/// capset waits for credentials that can change.
extension SyscallTable {
    mutating func registerCapability() {
        register(125, Capability.capget)
    }
}

enum Capability {
    static let version1: UInt32 = 0x1998_0330, version2: UInt32 = 0x2007_1026, version3: UInt32 = 0x2008_0522

    /// capget(2) in Linux's order: an unknown version is answered with the
    /// preferred one and EINVAL (0 when `datap` is NULL: a version probe);
    /// EINVAL for a negative PID, ESRCH for a missing task; then the
    /// effective, permitted and inheritable sets, one or two 32-bit words each.
    static func capget(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let header = args.pointer(0), data = args.pointer(1)
        let version = try task.copyIn(UInt32.self, from: header)
        let words: Int
        switch version {
        case version1: words = 1
        case version2, version3: words = 2
        default:
            try task.copyOut(value: version3, to: header)
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
}

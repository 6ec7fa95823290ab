import State

/// A task's identity: user and group IDs and capability sets. Immutable once
/// made (setuid and friends will make a new one), so tasks can share one.
public final class Credentials: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.Credentials"
    public static let savedAs: [String: String] = [
        "realUID": "uids", "effectiveUID": "uids", "savedUID": "uids",
        "realGID": "gids", "effectiveGID": "gids", "savedGID": "gids",
        "effectiveCaps": "caps", "permittedCaps": "caps", "inheritableCaps": "caps", "boundingCaps": "caps",
        "ambientCaps": "caps",
    ]

    public private(set) var realUID: UInt32 = 0
    public private(set) var effectiveUID: UInt32 = 0
    public private(set) var savedUID: UInt32 = 0
    public private(set) var realGID: UInt32 = 0
    public private(set) var effectiveGID: UInt32 = 0
    public private(set) var savedGID: UInt32 = 0
    public private(set) var supplementaryGIDs: [UInt32] = []
    /// Capability sets as bit masks (bit N is capability N, as in capget).
    public private(set) var effectiveCaps: UInt64 = 0
    public private(set) var permittedCaps: UInt64 = 0
    public private(set) var inheritableCaps: UInt64 = 0
    public private(set) var boundingCaps: UInt64 = 0
    public private(set) var ambientCaps: UInt64 = 0

    public init() {}

    /// Credentials for a process started as `uid`:`gid`. `capabilities` nil
    /// means Linux's rule: root gets every capability, anyone else none.
    public init(uid: UInt32, gid: UInt32, supplementaryGIDs: [UInt32] = [],
                capabilities: CapabilitySets? = nil) {
        realUID = uid; effectiveUID = uid; savedUID = uid
        realGID = gid; effectiveGID = gid; savedGID = gid
        self.supplementaryGIDs = supplementaryGIDs
        let caps = capabilities ?? (uid == 0 ? .all : .none)
        effectiveCaps = caps.effective
        permittedCaps = caps.permitted
        inheritableCaps = caps.inheritable
        boundingCaps = caps.bounding
        ambientCaps = caps.ambient
    }

    public func hasCapability(_ capability: Int) -> Bool {
        capability >= 0 && capability < 64 && effectiveCaps & (1 << UInt64(capability)) != 0
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("uids", [realUID, effectiveUID, savedUID])
        try sink.save("gids", [realGID, effectiveGID, savedGID])
        try sink.save("supplementaryGIDs", supplementaryGIDs)
        try sink.save("caps", [effectiveCaps, permittedCaps, inheritableCaps, boundingCaps, ambientCaps])
    }

    public func load(from source: inout LoadSource) throws {
        let uids: [UInt32] = try source.load("uids")
        let gids: [UInt32] = try source.load("gids")
        let caps: [UInt64] = try source.load("caps")
        guard uids.count == 3, gids.count == 3, caps.count == 5 else {
            throw StateError.invalidValue("\(uids.count) uids, \(gids.count) gids and \(caps.count) capability sets, expected 3, 3 and 5", field: "uids")
        }
        (realUID, effectiveUID, savedUID) = (uids[0], uids[1], uids[2])
        (realGID, effectiveGID, savedGID) = (gids[0], gids[1], gids[2])
        supplementaryGIDs = try source.load("supplementaryGIDs")
        // (uid_t)-1 means "unchanged" to every set*id call; no credential holds it.
        try ImageValidation.require(!uids.contains(UInt32.max), field: "uids", "(uid_t)-1 is not a user ID")
        try ImageValidation.require(!(gids + supplementaryGIDs).contains(UInt32.max), field: "gids",
                                    "(gid_t)-1 is not a group ID")
        try ImageValidation.require(supplementaryGIDs.count <= 65_536, field: "supplementaryGIDs",
                                    "more than NGROUPS_MAX groups")
        (effectiveCaps, permittedCaps, inheritableCaps, boundingCaps, ambientCaps) = (caps[0], caps[1], caps[2], caps[3], caps[4])
    }
}

/// The five capability sets, as masks.
public struct CapabilitySets: Equatable, Sendable {
    public var effective: UInt64
    public var permitted: UInt64
    public var inheritable: UInt64
    public var bounding: UInt64
    public var ambient: UInt64

    public init(effective: UInt64, permitted: UInt64, inheritable: UInt64, bounding: UInt64, ambient: UInt64) {
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.bounding = bounding
        self.ambient = ambient
    }

    /// CAP_LAST_CAP is 40 (CAP_CHECKPOINT_RESTORE) on Linux 5.9+.
    public static let allMask: UInt64 = (1 << 41) - 1
    public static let all = CapabilitySets(effective: allMask, permitted: allMask, inheritable: 0,
                                           bounding: allMask, ambient: 0)
    public static let none = CapabilitySets(effective: 0, permitted: 0, inheritable: 0, bounding: allMask, ambient: 0)

    /// Linux's capability names in bit order, for mapping an OCI spec's names.
    public static let names = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The mask for capability names; unknown names are ignored, as runc does.
    public static func mask(_ names: [String]?) -> UInt64 {
        var mask: UInt64 = 0
        for name in names ?? [] {
            if let bit = Self.names.firstIndex(of: name) { mask |= 1 << UInt64(bit) }
        }
        return mask
    }
}

extension Task {
    /// __ptrace_may_access with PTRACE_MODE_READ_REALCREDS (get_robust_list,
    /// and what else reads another process's insides): a thread of the same
    /// process always; otherwise the caller's real IDs must equal all of the
    /// target's user and group IDs and the target be dumpable, unless the
    /// caller has CAP_SYS_PTRACE.
    func mayReadAsTracer(_ target: Task) -> Bool {
        if target === self || (threadGroup != nil && target.threadGroup === threadGroup) { return true }
        let mine = credentials, theirs = target.credentials
        let privileged = mine.hasCapability(LinuxPtraceAccess.CAP_SYS_PTRACE)
        let sameUser = [theirs.realUID, theirs.effectiveUID, theirs.savedUID].allSatisfy { $0 == mine.realUID }
            && [theirs.realGID, theirs.effectiveGID, theirs.savedGID].allSatisfy { $0 == mine.realGID }
        guard sameUser || privileged else { return false }
        return target.controls.dumpable == LinuxPtraceAccess.SUID_DUMP_USER || privileged
    }
}

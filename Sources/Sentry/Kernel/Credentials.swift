import State

/// A task's identity: user and group IDs and capability sets. Immutable once
/// made (set*id, capset and exec make a changed copy, as Linux's
/// prepare_creds/commit_creds), so tasks can share one.
public final class Credentials: Savable, @unchecked Sendable {
    public static let savedTypeName = "sentry.Credentials"
    public static let savedAs: [String: String] = [
        "realUID": "uids", "effectiveUID": "uids", "savedUID": "uids",
        "realGID": "gids", "effectiveGID": "gids", "savedGID": "gids",
        "filesystemUID": "filesystemIDs", "filesystemGID": "filesystemIDs",
        "effectiveCaps": "caps", "permittedCaps": "caps", "inheritableCaps": "caps", "boundingCaps": "caps",
        "ambientCaps": "caps",
    ]

    public private(set) var realUID: UInt32 = 0
    public private(set) var effectiveUID: UInt32 = 0
    public private(set) var savedUID: UInt32 = 0
    public private(set) var realGID: UInt32 = 0
    public private(set) var effectiveGID: UInt32 = 0
    public private(set) var savedGID: UInt32 = 0
    /// What file permission checks use (setfsuid); follows the effective IDs
    /// whenever those change.
    public private(set) var filesystemUID: UInt32 = 0
    public private(set) var filesystemGID: UInt32 = 0
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
        realUID = uid; effectiveUID = uid; savedUID = uid; filesystemUID = uid
        realGID = gid; effectiveGID = gid; savedGID = gid; filesystemGID = gid
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
        try sink.save("filesystemIDs", [filesystemUID, filesystemGID])
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
        // Images from before setfsuid kept the filesystem IDs equal to the effective ones.
        let filesystemIDs: [UInt32] = try source.load("filesystemIDs", default: [effectiveUID, effectiveGID])
        try ImageValidation.require(filesystemIDs.count == 2, field: "filesystemIDs",
                                    "\(filesystemIDs.count) filesystem IDs, expected 2")
        (filesystemUID, filesystemGID) = (filesystemIDs[0], filesystemIDs[1])
        supplementaryGIDs = try source.load("supplementaryGIDs")
        // (uid_t)-1 means "unchanged" to every set*id call; no credential holds it.
        try ImageValidation.require(!(uids + [filesystemUID]).contains(UInt32.max), field: "uids",
                                    "(uid_t)-1 is not a user ID")
        try ImageValidation.require(!(gids + [filesystemGID] + supplementaryGIDs).contains(UInt32.max), field: "gids",
                                    "(gid_t)-1 is not a group ID")
        try ImageValidation.require(supplementaryGIDs.count <= LinuxGroups.NGROUPS_MAX, field: "supplementaryGIDs",
                                    "more than NGROUPS_MAX groups")
        (effectiveCaps, permittedCaps, inheritableCaps, boundingCaps, ambientCaps) = (caps[0], caps[1], caps[2], caps[3], caps[4])
    }
}

/// Changed copies, as Linux's prepare_creds, a change, commit_creds. The
/// permission checks are the callers' (kernel/sys.c's); what is here is
/// what follows from a change whoever asked (security/commoncap.c).
extension Credentials {
    private func copy() -> Credentials {
        let copy = Credentials()
        (copy.realUID, copy.effectiveUID, copy.savedUID, copy.filesystemUID) =
            (realUID, effectiveUID, savedUID, filesystemUID)
        (copy.realGID, copy.effectiveGID, copy.savedGID, copy.filesystemGID) =
            (realGID, effectiveGID, savedGID, filesystemGID)
        copy.supplementaryGIDs = supplementaryGIDs
        (copy.effectiveCaps, copy.permittedCaps, copy.inheritableCaps, copy.boundingCaps, copy.ambientCaps) =
            (effectiveCaps, permittedCaps, inheritableCaps, boundingCaps, ambientCaps)
        return copy
    }

    var userIDs: [UInt32] { [realUID, effectiveUID, savedUID] }
    var groupIDs: [UInt32] { [realGID, effectiveGID, savedGID] }

    /// New real, effective and saved user IDs (nil keeps one); the
    /// filesystem UID follows the effective one, and the capabilities follow
    /// root's coming and going (cap_emulate_setxuid) unless
    /// SECBIT_NO_SETUID_FIXUP: leaving root in all three drops the permitted
    /// and effective sets (not with SECBIT_KEEP_CAPS) and the ambient set;
    /// an effective UID leaving root drops the effective set, one becoming
    /// root raises it to the permitted set.
    func settingUserIDs(real: UInt32?, effective: UInt32?, saved: UInt32?, securebits: UInt32) -> Credentials {
        let new = copy()
        new.realUID = real ?? realUID
        new.effectiveUID = effective ?? effectiveUID
        new.savedUID = saved ?? savedUID
        new.filesystemUID = new.effectiveUID
        guard securebits & LinuxSecureBits.SECBIT_NO_SETUID_FIXUP == 0 else { return new }
        if userIDs.contains(0), !new.userIDs.contains(0) {
            if securebits & LinuxSecureBits.SECBIT_KEEP_CAPS == 0 {
                new.permittedCaps = 0
                new.effectiveCaps = 0
            }
            new.ambientCaps = 0
        }
        if effectiveUID == 0, new.effectiveUID != 0 { new.effectiveCaps = 0 }
        if effectiveUID != 0, new.effectiveUID == 0 { new.effectiveCaps = new.permittedCaps }
        return new
    }

    /// New real, effective and saved group IDs; the filesystem GID follows.
    func settingGroupIDs(real: UInt32?, effective: UInt32?, saved: UInt32?) -> Credentials {
        let new = copy()
        new.realGID = real ?? realGID
        new.effectiveGID = effective ?? effectiveGID
        new.savedGID = saved ?? savedGID
        new.filesystemGID = new.effectiveGID
        return new
    }

    /// setfsuid's change: the filesystem capabilities leave with root and
    /// come back (as far as permitted) with it.
    func settingFilesystemUID(_ uid: UInt32, securebits: UInt32) -> Credentials {
        let new = copy()
        new.filesystemUID = uid
        guard securebits & LinuxSecureBits.SECBIT_NO_SETUID_FIXUP == 0 else { return new }
        if filesystemUID == 0, uid != 0 { new.effectiveCaps &= ~LinuxCapability.filesystemMask }
        if filesystemUID != 0, uid == 0 {
            new.effectiveCaps |= new.permittedCaps & LinuxCapability.filesystemMask
        }
        return new
    }

    func settingFilesystemGID(_ gid: UInt32) -> Credentials {
        let new = copy()
        new.filesystemGID = gid
        return new
    }

    /// setgroups: kept sorted, as groups_sort leaves them for getgroups.
    func settingSupplementaryGIDs(_ groups: [UInt32]) -> Credentials {
        let new = copy()
        new.supplementaryGIDs = groups.sorted()
        return new
    }

    /// capset's new sets, already checked; the ambient set keeps only what
    /// is both permitted and inheritable.
    func settingCapabilities(effective: UInt64, permitted: UInt64, inheritable: UInt64) -> Credentials {
        let new = copy()
        new.effectiveCaps = effective
        new.permittedCaps = permitted
        new.inheritableCaps = inheritable
        new.ambientCaps &= permitted & inheritable
        return new
    }

    /// PR_CAPBSET_DROP and PR_CAP_AMBIENT's changes.
    func settingBoundingAndAmbient(bounding: UInt64, ambient: UInt64) -> Credentials {
        let new = copy()
        new.boundingCaps = bounding
        new.ambientCaps = ambient
        return new
    }

    /// What an exec of a file owned by `owner` with `mode` makes of these
    /// credentials (bprm_fill_uid, cap_bprm_creds_from_file), and whether
    /// the exec is privileged (AT_SECURE). A set-user-ID file (a
    /// set-group-ID one with group execute) runs as its owner, except from
    /// a nosuid mount or under no_new_privs. Root (real or effective, unless
    /// SECBIT_NOROOT) is permitted the bounding and inheritable sets, and an
    /// effective root has them effective; anyone else keeps only the ambient
    /// set, which a set-ID exec clears. Under no_new_privs nothing is gained.
    func forExec(owner: (uid: UInt32, gid: UInt32), mode: UInt32, onNoSetIDMount: Bool, noNewPrivileges: Bool,
                 securebits: UInt32) -> (credentials: Credentials, secure: Bool) {
        let new = copy()
        if !onNoSetIDMount, !noNewPrivileges {
            if mode & 0o4000 != 0 { new.effectiveUID = owner.uid }
            if mode & 0o2010 == 0o2010 { new.effectiveGID = owner.gid }
        }
        var raiseEffective = false
        new.permittedCaps = 0
        if securebits & LinuxSecureBits.SECBIT_NOROOT == 0, new.effectiveUID == 0 || new.realUID == 0 {
            new.permittedCaps = boundingCaps | inheritableCaps
            raiseEffective = new.effectiveUID == 0
        }
        let setID = new.effectiveUID != realUID || new.effectiveGID != realGID
        if noNewPrivileges, setID || new.permittedCaps & ~permittedCaps != 0 {
            if !hasCapability(LinuxCapability.CAP_SETUID) {
                (new.effectiveUID, new.effectiveGID) = (new.realUID, new.realGID)
            }
            new.permittedCaps &= permittedCaps
        }
        (new.savedUID, new.filesystemUID) = (new.effectiveUID, new.effectiveUID)
        (new.savedGID, new.filesystemGID) = (new.effectiveGID, new.effectiveGID)
        if setID { new.ambientCaps = 0 }
        new.permittedCaps |= new.ambientCaps
        new.effectiveCaps = raiseEffective ? new.permittedCaps : new.ambientCaps
        let secure = setID || (new.realUID != 0 && (raiseEffective || new.permittedCaps & ~new.ambientCaps != 0))
        return (new, secure)
    }

    /// Whether going from `self` to `new` makes the process undumpable and
    /// forget its parent-death signal (commit_creds): a changed effective or
    /// filesystem ID, or permitted capabilities it did not have.
    func isPrivilegeChange(to new: Credentials) -> Bool {
        effectiveUID != new.effectiveUID || effectiveGID != new.effectiveGID
            || filesystemUID != new.filesystemUID || filesystemGID != new.filesystemGID
            || new.permittedCaps & ~permittedCaps != 0
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

    /// CAP_LAST_CAP + 1: CAP_CHECKPOINT_RESTORE (40) is the last, since Linux 5.9.
    public static let count = 41
    public static let allMask: UInt64 = (1 << UInt64(count)) - 1
    public static let all = CapabilitySets(effective: allMask, permitted: allMask, inheritable: 0,
                                           bounding: allMask, ambient: 0)
    public static let none = CapabilitySets(effective: 0, permitted: 0, inheritable: 0, bounding: allMask, ambient: 0)
}

extension Task {
    /// check_kill_permission, for a signal a program sends: any thread of
    /// its own process; otherwise the sender's real or effective UID must be
    /// the target's real or saved one, or the sender have CAP_KILL; SIGCONT
    /// within the sender's session always goes. `thread` is the target
    /// thread, else the process's leader.
    func maySignal(_ group: ThreadGroup, thread: Task? = nil, signal: Signal) -> Bool {
        if group === threadGroup { return true }
        guard let target = thread ?? group.leader else { return true }
        let mine = credentials, theirs = target.credentials
        if [mine.realUID, mine.effectiveUID].contains(where: { $0 == theirs.realUID || $0 == theirs.savedUID }) {
            return true
        }
        if mine.hasCapability(LinuxCapability.CAP_KILL) { return true }
        return signal == .cont && group.sessionID == threadGroup?.sessionID
    }

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

/// The identity a file operation is checked against: the task's filesystem
/// uid/gid, groups and the capabilities that bypass file permissions. Built by
/// the syscall layer from the task's credentials so the VFS needs no Task.
public struct FileCredentials: Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]
    /// CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
    public var overridesPermissions: Bool
    /// CAP_FOWNER: chmod/utimes on files one does not own.
    public var ownsEverything: Bool
    /// CAP_CHOWN.
    public var mayChown: Bool
    /// CAP_FSETID: keep setgid on chmod when not in the group.
    public var mayKeepSetGroupID: Bool

    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = [], overridesPermissions: Bool,
                ownsEverything: Bool, mayChown: Bool, mayKeepSetGroupID: Bool) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.overridesPermissions = overridesPermissions
        self.ownsEverything = ownsEverything
        self.mayChown = mayChown
        self.mayKeepSetGroupID = mayKeepSetGroupID
    }

    /// uid 0 with the capabilities a container's root has.
    public static let root = FileCredentials(uid: 0, gid: 0, overridesPermissions: true, ownsEverything: true,
                                             mayChown: true, mayKeepSetGroupID: true)

    /// An unprivileged user: every permission is checked.
    public static func user(uid: UInt32, gid: UInt32, groups: [UInt32] = []) -> FileCredentials {
        FileCredentials(uid: uid, gid: gid, groups: groups, overridesPermissions: false, ownsEverything: false,
                        mayChown: false, mayKeepSetGroupID: false)
    }

    public func isMember(of group: UInt32) -> Bool { gid == group || groups.contains(group) }

    /// generic_permission: owner bits, else group bits, else other bits; the
    /// capability bypasses read/write always and execute when any x bit is set
    /// or the file is a directory.
    public func mayAccess(mode: UInt32, uid owner: UInt32, gid group: UInt32, want: UInt32) -> Bool {
        let bits: UInt32
        if uid == owner {
            bits = (mode >> 6) & 7
        } else if isMember(of: group) {
            bits = (mode >> 3) & 7
        } else {
            bits = mode & 7
        }
        if bits & want == want { return true }
        guard overridesPermissions else { return false }
        if want & LinuxFile.mayExecute != 0 {
            let isDirectory = mode & LinuxFile.typeMask == FileType.directory.rawValue
            return isDirectory || mode & 0o111 != 0
        }
        return true
    }
}

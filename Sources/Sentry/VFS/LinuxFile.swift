import State

/// Linux's x86_64 ABI numbers for files: open flags, `*at` flags, mode bits.
/// Kept here as named constants so handlers read like the man pages.
public enum LinuxFile {
    public static let accessModeMask: UInt32 = 0o3
    public static let readOnly: UInt32 = 0
    public static let writeOnly: UInt32 = 0o1
    public static let readWrite: UInt32 = 0o2
    public static let create: UInt32 = 0o100
    public static let exclusive: UInt32 = 0o200
    public static let noControllingTerminal: UInt32 = 0o400
    public static let truncate: UInt32 = 0o1000
    public static let append: UInt32 = 0o2000
    public static let nonBlocking: UInt32 = 0o4000
    public static let dataSync: UInt32 = 0o10000
    public static let async: UInt32 = 0o20000
    public static let direct: UInt32 = 0o40000
    public static let largeFile: UInt32 = 0o100000
    public static let directory: UInt32 = 0o200000
    public static let noFollow: UInt32 = 0o400000
    public static let noAccessTime: UInt32 = 0o1000000
    public static let closeOnExec: UInt32 = 0o2000000
    public static let sync: UInt32 = 0o4010000
    public static let pathOnly: UInt32 = 0o10000000
    public static let temporaryFile: UInt32 = 0o20200000

    /// Every flag an open file description keeps (open(2)'s, less the ones
    /// that act only at open).
    public static let openStatusFlags: UInt32 = accessModeMask | append | nonBlocking | dataSync | async | direct
        | largeFile | directory | noFollow | noAccessTime | sync | pathOnly | temporaryFile

    /// Status flags that F_SETFL may change (fs/fcntl.c SETFL_MASK).
    public static let settableStatusFlags: UInt32 = append | nonBlocking | async | direct | noAccessTime

    public static let atCurrentDirectory: Int32 = -100
    public static let atSymlinkNoFollow: UInt32 = 0x100
    public static let atRemoveDirectory: UInt32 = 0x200
    public static let atEffectiveAccess: UInt32 = 0x200
    public static let atSymlinkFollow: UInt32 = 0x400
    public static let atNoAutomount: UInt32 = 0x800
    public static let atEmptyPath: UInt32 = 0x1000
    public static let atStatxSyncTypeMask: UInt32 = 0x6000

    public static let renameNoReplace: UInt32 = 1
    public static let renameExchange: UInt32 = 2
    public static let renameWhiteout: UInt32 = 4

    public static let pathMax = 4096
    public static let nameMax = 255

    /// A path's components, split at each "/" byte as Linux splits them (not
    /// at Swift's Characters: "/" followed by a combining mark is one
    /// Character, and a name holding that "/" reached the host whole, where
    /// host lookups resolve it as several components, symlinks and all).
    public static func components(of path: String) -> [String] {
        path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { String(Substring($0)) }
    }

    /// The order directories list their entries in: by bytes, the cheapest
    /// deterministic one (Swift's String order is Unicode's).
    public static func namePrecedes(_ left: String, _ right: String) -> Bool {
        left.utf8.lexicographicallyPrecedes(right.utf8)
    }

    /// MAXSYMLINKS in fs/namei.c.
    public static let maxSymlinkFollows = 40

    public static let typeMask: UInt32 = 0o170000
    public static let setUserID: UInt32 = 0o4000
    public static let setGroupID: UInt32 = 0o2000
    public static let sticky: UInt32 = 0o1000
    public static let permissionMask: UInt32 = 0o7777

    /// fallocate(2)'s FALLOC_FL_KEEP_SIZE: take the blocks, leave the size.
    public static let fallocateKeepSize: Int32 = 1
    public static let seekSet: Int32 = 0
    public static let seekCurrent: Int32 = 1
    public static let seekEnd: Int32 = 2
    public static let seekData: Int32 = 3
    public static let seekHole: Int32 = 4

    /// access(2) mode bits.
    public static let mayExecute: UInt32 = 1
    public static let mayWrite: UInt32 = 2
    public static let mayRead: UInt32 = 4

    /// setxattr(2)'s flags and limits (include/uapi/linux/xattr.h, limits.h).
    public static let xattrCreate: UInt32 = 1
    public static let xattrReplace: UInt32 = 2
    public static let xattrNameMax = 255
    public static let xattrSizeMax = 65536
    /// The namespaces an attribute name may start with (xattr_permission).
    public static let xattrNamespaces = ["user.", "trusted.", "security.", "system."]

    public static let pipeBufferAtomicSize = 4096
    public static let pipeDefaultCapacity = 65536
}

/// The type bits of a mode, as `S_IF*` and as getdents' `d_type`.
public enum FileType: UInt32, SavableValue, Sendable {
    case fifo = 0o010000
    case characterDevice = 0o020000
    case directory = 0o040000
    case blockDevice = 0o060000
    case regular = 0o100000
    case symlink = 0o120000
    case socket = 0o140000

    public init?(mode: UInt32) {
        self.init(rawValue: mode & LinuxFile.typeMask)
    }

    public var directoryEntryType: UInt8 {
        switch self {
        case .fifo: 1
        case .characterDevice: 2
        case .directory: 4
        case .blockDevice: 6
        case .regular: 8
        case .symlink: 10
        case .socket: 12
        }
    }
}

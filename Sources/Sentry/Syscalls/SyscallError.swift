/// A Linux errno, as a syscall handler throws it. The raw value is the errno
/// number; the application sees `-rawValue` in rax.
public enum SyscallError: Int32, Error, Sendable, CustomStringConvertible {
    case eperm = 1, enoent, esrch, eintr, eio, enxio, e2big, enoexec, ebadf, echild
    case eagain, enomem, eacces, efault, enotblk, ebusy, eexist, exdev, enodev, enotdir
    case eisdir, einval, enfile, emfile, enotty, etxtbsy, efbig, enospc, espipe, erofs
    case emlink, epipe, edom, erange, edeadlk, enametoolong, enolck, enosys, enotempty, eloop
    case enomsg = 42, eidrm, enodata = 61, etime, eoverflow = 75, ebadfd = 77
    case elibbad = 80
    case eilseq = 84, erestart, enotsock = 88, edestaddrreq, emsgsize, eprototype, enoprotoopt
    case eprotonosupport, esocktnosupport, eopnotsupp, epfnosupport, eafnosupport
    case eaddrinuse, eaddrnotavail, enetdown, enetunreach, enetreset, econnaborted
    case econnreset, enobufs, eisconn, enotconn, eshutdown, etoomanyrefs, etimedout
    case econnrefused, ehostdown, ehostunreach, ealready, einprogress, estale
    case edquot = 122, ecanceled = 125, eownerdead = 130, enotrecoverable

    /// Kernel-internal restart codes (linux/errno.h): never seen by the
    /// application. A syscall interrupted by a signal or by a checkpoint returns
    /// one of these, and the task either restarts the call or turns it into EINTR.
    case erestartsys = 512, erestartnointr, erestartnohand, enoioctlcmd, erestartRestartblock

    public static let ewouldblock = SyscallError.eagain
    public static let enotsup = SyscallError.eopnotsupp

    /// Whether the application must never see this value.
    public var isRestartCode: Bool { rawValue >= 512 }

    /// The value a syscall returns for this error.
    public var returnValue: Int64 { -Int64(rawValue) }

    /// The errno's name ("ENOENT"). Interpolating `self` here would recurse
    /// into this property, so the names are a table.
    public var description: String { SyscallError.names[rawValue] ?? "errno \(rawValue)" }

    private static let names: [Int32: String] = [
        1: "EPERM",
        2: "ENOENT",
        3: "ESRCH",
        4: "EINTR",
        5: "EIO",
        6: "ENXIO",
        7: "E2BIG",
        8: "ENOEXEC",
        9: "EBADF",
        10: "ECHILD",
        11: "EAGAIN",
        12: "ENOMEM",
        13: "EACCES",
        14: "EFAULT",
        15: "ENOTBLK",
        16: "EBUSY",
        17: "EEXIST",
        18: "EXDEV",
        19: "ENODEV",
        20: "ENOTDIR",
        21: "EISDIR",
        22: "EINVAL",
        23: "ENFILE",
        24: "EMFILE",
        25: "ENOTTY",
        26: "ETXTBSY",
        27: "EFBIG",
        28: "ENOSPC",
        29: "ESPIPE",
        30: "EROFS",
        31: "EMLINK",
        32: "EPIPE",
        33: "EDOM",
        34: "ERANGE",
        35: "EDEADLK",
        36: "ENAMETOOLONG",
        37: "ENOLCK",
        38: "ENOSYS",
        39: "ENOTEMPTY",
        40: "ELOOP",
        42: "ENOMSG",
        43: "EIDRM",
        61: "ENODATA",
        62: "ETIME",
        75: "EOVERFLOW",
        77: "EBADFD",
        80: "ELIBBAD",
        84: "EILSEQ",
        85: "ERESTART",
        88: "ENOTSOCK",
        89: "EDESTADDRREQ",
        90: "EMSGSIZE",
        91: "EPROTOTYPE",
        92: "ENOPROTOOPT",
        93: "EPROTONOSUPPORT",
        94: "ESOCKTNOSUPPORT",
        95: "EOPNOTSUPP",
        96: "EPFNOSUPPORT",
        97: "EAFNOSUPPORT",
        98: "EADDRINUSE",
        99: "EADDRNOTAVAIL",
        100: "ENETDOWN",
        101: "ENETUNREACH",
        102: "ENETRESET",
        103: "ECONNABORTED",
        104: "ECONNRESET",
        105: "ENOBUFS",
        106: "EISCONN",
        107: "ENOTCONN",
        108: "ESHUTDOWN",
        109: "ETOOMANYREFS",
        110: "ETIMEDOUT",
        111: "ECONNREFUSED",
        112: "EHOSTDOWN",
        113: "EHOSTUNREACH",
        114: "EALREADY",
        115: "EINPROGRESS",
        116: "ESTALE",
        122: "EDQUOT",
        125: "ECANCELED",
        130: "EOWNERDEAD",
        131: "ENOTRECOVERABLE",
        512: "ERESTARTSYS",
        513: "ERESTARTNOINTR",
        514: "ERESTARTNOHAND",
        515: "ENOIOCTLCMD",
        516: "ERESTART_RESTARTBLOCK"
    ]
}

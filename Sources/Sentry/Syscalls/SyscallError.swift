/// A Linux errno, as a syscall handler throws it. The raw value is the errno
/// number; the application sees `-rawValue` in rax.
public enum SyscallError: Int32, Error, Sendable, CustomStringConvertible {
    case eperm = 1, enoent, esrch, eintr, eio, enxio, e2big, enoexec, ebadf, echild
    case eagain, enomem, eacces, efault, enotblk, ebusy, eexist, exdev, enodev, enotdir
    case eisdir, einval, enfile, emfile, enotty, etxtbsy, efbig, enospc, espipe, erofs
    case emlink, epipe, edom, erange, edeadlk, enametoolong, enolck, enosys, enotempty, eloop
    case enomsg = 42, eidrm, enodata = 61, etime, eoverflow = 75, ebadfd = 77
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

    public var description: String { "\(self)".uppercased() }
}

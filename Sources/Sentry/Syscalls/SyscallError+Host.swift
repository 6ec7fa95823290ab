import Glibc

extension SyscallError {
    /// The current host errno as a SyscallError (EIO for a value Linux's
    /// ABI does not define), for Sentry code that forwards host failures.
    static func hostErrno() -> SyscallError {
        SyscallError(rawValue: errno) ?? .eio
    }

    /// `code` (a positive host errno) as a SyscallError.
    static func fromHost(_ code: Int32) -> SyscallError {
        SyscallError(rawValue: code) ?? .eio
    }
}

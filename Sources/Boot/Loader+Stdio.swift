import Glibc
import Sentry

extension Loader {
    /// The host FDs the container's stdio lives at (DESIGN.md principle 4): a
    /// restore puts the new stdio at the same numbers.
    static let stdioTargets: [Int32] = [HostStdioFile.standardInput, HostStdioFile.standardOutput,
                                        HostStdioFile.standardError]

    /// Moves each stdio FD to 256+i: the target must be free (F_GETFD fails
    /// with EBADF), the copy is close-on-exec (F_DUPFD_CLOEXEC on a free target
    /// is dup3 with O_CLOEXEC, which Swift's Glibc does not export), the
    /// original is closed.
    static func moveStdio(_ fds: [Int32]) throws(LoaderError) {
        guard fds.count == 3 else { throw LoaderError("expected 3 stdio FDs, got \(fds.count)") }
        for (fd, target) in zip(fds, stdioTargets) {
            guard fcntl(target, F_GETFD) < 0, errno == EBADF else {
                throw LoaderError("host FD \(target) for the container's stdio is already in use")
            }
            guard fcntl(fd, F_DUPFD_CLOEXEC, target) == target else {
                throw LoaderError("cannot move stdio FD \(fd) to \(target): errno \(errno)")
            }
        }
        for fd in fds where !stdioTargets.contains(fd) { close(fd) }
    }
}

import CShim
import Glibc
import Logging

/// The sandbox process's confinement on the host, applied by `runsc boot`
/// before it opens anything of the container's and before it starts a
/// thread (namespaces belong to the thread that unshares; stubs, forked
/// later, inherit all of it).
///
/// What it makes: new mount (a copy of the host's, a slave of it, so the
/// bundle's rootfs, bind mounts and the state directory resolve as before
/// and nothing we mount reaches the host), IPC, UTS and network namespaces
/// (the Sentry makes no host network calls; its control socket is bound by
/// path, which a network namespace does not scope); NoNewPrivs; every
/// capability dropped but `keptCapabilities`. Not made: a PID namespace (the
/// first stub would be its init, and the namespace would die with that
/// stub), a user namespace and pivot_root into an empty root (to come).
/// Each step that fails is reported and the others still run.
public struct Confinement: Sendable {
    /// What was done and what could not be, in order, for the log.
    public private(set) var report: [(level: Logger.Level, message: String)] = []

    /// Capabilities the Sentry needs, each for the host calls it makes on the
    /// application's behalf. Tracing the stubs needs none: they are our own
    /// children, with our uid and our capabilities, and make themselves
    /// dumpable (see ptrace_stub.c).
    public static let keptCapabilities: [(number: Int32, name: String, why: String)] = [
        (CAP_CHOWN, "CAP_CHOWN", "chown(2) of hostfs and bind-mounted files sets the host file's owner"),
        (CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE",
         "the application's root reads and writes rootfs and bind-mounted files of any owner and mode, as on Linux"),
        (CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "the same for searching and listing host directories"),
        (CAP_FOWNER, "CAP_FOWNER", "chmod(2) and utimensat(2) of host files another uid owns"),
        (CAP_FSETID, "CAP_FSETID", "chmod(2) keeps set-group-ID on host files of another group"),
    ]

    /// Namespaces `runsc boot` makes, by the names /proc/PID/ns uses.
    static let namespaces = ["mnt", "ipc", "uts", "net"]

    /// Confines the calling process. Must run while it has one thread.
    public static func apply() -> Confinement {
        var confinement = Confinement()
        confinement.makeNamespaces()
        confinement.step("NoNewPrivs", cshim_set_no_new_privs())
        let keep = keptCapabilities.reduce(UInt64(0)) { $0 | (1 << UInt64($1.number)) }
        confinement.step("dropping capabilities but \(keptCapabilities.map(\.name).joined(separator: ", "))",
                         cshim_limit_capabilities(keep))
        return confinement
    }

    /// Logs the report, failures as warnings.
    public func log(to logger: Logger) {
        for entry in report { logger.log(level: entry.level, "\(entry.message)") }
    }

    private mutating func makeNamespaces() {
        let threads = Self.threadCount()
        guard threads == 1 else {
            report.append((.warning, "confinement: no new namespaces: the sandbox process has \(threads.map(String.init) ?? "an unknown number of") threads, and a namespace made now would hold only one of them"))
            return
        }
        for namespace in Self.namespaces {
            let result = cshim_unshare_namespace(namespace)
            if result < 0 {
                report.append((.warning, "confinement: cannot make a \(namespace) namespace: \(String(cString: strerror(-result))); the sandbox stays in the host's"))
            } else {
                report.append((.info, "confinement: new \(namespace) namespace"))
            }
        }
    }

    private mutating func step(_ what: String, _ result: Int32) {
        if result < 0 {
            report.append((.warning, "confinement: \(what) failed: \(String(cString: strerror(-result)))"))
        } else {
            report.append((.info, "confinement: \(what)"))
        }
    }

    /// The `Threads:` line of /proc/self/status.
    private static func threadCount() -> Int? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8192)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[0..<count], as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }) else { return nil }
        return Int(String(line.dropFirst("Threads:".count).filter { !$0.isWhitespace }))
    }
}

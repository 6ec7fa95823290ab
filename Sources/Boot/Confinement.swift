import CShim
import Glibc
import Logging
import Sentry

/// The sandbox process's confinement on the host, applied by `runsc boot`
/// in two steps: `apply()` before it opens anything of the container's and
/// before it starts a thread (namespaces belong to the thread that unshares;
/// stubs, forked later, inherit all of it), then `confine(keeping:)` once it
/// has read the bundle and the host facts it needs, still on one thread (capabilities are per thread, and pivot_root needs
/// CAP_SYS_ADMIN).
///
/// What it makes: new mount (a copy of the host's, a slave of it, so nothing
/// we mount reaches the host), IPC, UTS and network namespaces (the Sentry
/// makes no host network calls; its control socket is bound by path, which a
/// network namespace does not scope); an empty, read-only root holding only
/// the host paths the sandbox uses (see `enterEmptyRoot`); NoNewPrivs; every
/// capability dropped but `keptCapabilities`; the PID namespace the launcher
/// started it in is reported. Each step that fails is reported and the
/// others still run.
///
/// Not made, and why:
/// - A user namespace. Mapping host root to an unprivileged uid (gVisor's
///   65534) leaves every host file owned by root with an unmapped owner,
///   which CAP_DAC_OVERRIDE, CAP_CHOWN and CAP_FOWNER in the namespace do not
///   reach: the container's root could no longer write its rootfs and bind
///   mounts as on Linux. gVisor can, because its gofer, outside the
///   namespace, does the file I/O; our Sentry does it itself. Mapping host 0
///   to 0 keeps files working and confines nothing more: capabilities in
///   such a namespace reach every host file whose owner is mapped, and with
///   an identity map all are, while the capabilities it would take away are
///   already dropped. Either way, only a process outside (the launcher) may
///   write more than one uid into the map.
/// - A PID namespace made here: unshare(CLONE_NEWPID) would put only our
///   children in it (the stubs, behind a small init we would fork first),
///   but a process whose children's PID namespace is not its own can no
///   longer start threads (clone with CLONE_THREAD fails with EINVAL,
///   measured here), and the Sentry starts threads all its life. The
///   launcher starts `runsc boot` in a new one instead, as gVisor does
///   (SandboxLauncher): the sandbox is its init (killing it kills every
///   stub), and records its host PID (SandboxProcess.current). As an init,
///   it ignores every signal from the host that it does not handle, SIGKILL
///   and SIGSTOP aside: a host `kill -TERM` of its PID does nothing. runsc
///   kill, delete and podman's stop go through the control socket (delete
///   then SIGKILL), and a fatal signal it sends itself ends in exit status
///   128+N instead (see fatal.c).
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

    /// Makes the namespaces and sets NoNewPrivs. Must run while the process has one thread.
    /// `pidNamespaceError` is why the launcher could not start it in a new PID namespace.
    public static func apply(pidNamespaceError: String?) -> Confinement {
        var confinement = Confinement()
        if getpid() == 1 {
            confinement.report.append((.info, "confinement: new pid namespace (the sandbox is its init, its stubs are in it)"))
        } else {
            let why = pidNamespaceError.map { "the launcher could not start the sandbox in one: \($0)" }
                ?? "the sandbox was not started in one"
            confinement.report.append((.warning, "confinement: no pid namespace: \(why)"))
        }
        confinement.makeNamespaces()
        confinement.step("NoNewPrivs", cshim_set_no_new_privs())
        return confinement
    }

    /// The second step, once the sandbox has read what it needs from the
    /// host's /proc: pivots into an empty root that keeps `paths`, then
    /// drops every capability but `keptCapabilities` (after the pivot, which
    /// needs CAP_SYS_ADMIN). Capabilities belong to the thread: with more than
    /// one, the others would keep theirs, so it refuses that step and says so.
    public mutating func confine(keeping paths: [String]) {
        let threads = Self.threadCount()
        HostFacts.capture()
        enterEmptyRoot(keeping: paths)
        guard threads == 1 else {
            report.append((.warning, "confinement: capabilities not dropped: the sandbox process has \(threads.map(String.init) ?? "an unknown number of") threads, and a capability set is each thread's own"))
            return
        }
        let keep = Self.keptCapabilities.reduce(UInt64(0)) { $0 | (1 << UInt64($1.number)) }
        step("dropping capabilities but \(Self.keptCapabilities.map(\.name).joined(separator: ", "))",
             cshim_limit_capabilities(keep))
    }

    /// Where the new root is built: the host's /tmp, hidden by it in the
    /// sandbox's mount namespace only (gVisor's runsc builds its chroot there too).
    static let newRootMountPoint = "/tmp"

    /// Pivots into an empty, read-only tmpfs that holds only `paths`
    /// (absolute host paths of directories or files), each bind-mounted
    /// (recursively) at its own path: every path the sandbox uses after boot
    /// names the file it named before, and no other host path is reachable by
    /// name. A path beneath another one it keeps is reached through that one's
    /// bind. The paths are opened (O_PATH) before the tmpfs covers /tmp, and
    /// bound from those descriptors; each is checked to be the same file in
    /// the new root before the pivot. Any failure leaves the host's root.
    private mutating func enterEmptyRoot(keeping paths: [String]) {
        guard let relative = paths.first(where: { !$0.hasPrefix("/") }) else {
            return pivot(into: Self.newRootMountPoint, keeping: Self.normalized(paths))
        }
        report.append((.warning, "confinement: the host's root stays: the sandbox uses \(relative), a relative host path"))
    }

    /// The paths normalized (no empty or "." components), shortest first,
    /// without duplicates.
    static func normalized(_ paths: [String]) -> [String] {
        let normalized = Set(paths.map { path in
            "/" + path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
        })
        return normalized.sorted { ($0.split(separator: "/").count, $0) < ($1.split(separator: "/").count, $1) }
    }

    private mutating func pivot(into newRoot: String, keeping paths: [String]) {
        var opened: [(path: String, fd: Int32, info: stat)] = []
        defer { for entry in opened { close(entry.fd) } }
        for path in paths {
            let fd = open(path, Int32(bitPattern: LinuxFile.pathOnly) | O_CLOEXEC)
            var info = stat()
            guard fd >= 0, fstat(fd, &info) == 0 else {
                let reason = String(cString: strerror(errno))
                if fd >= 0 { close(fd) }
                report.append((.warning, "confinement: the host's root stays: cannot open \(path): \(reason)"))
                return
            }
            opened.append((path, fd, info))
        }
        guard mount("runsc-root", newRoot, "tmpfs", UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), "mode=0755") == 0 else {
            report.append((.warning, "confinement: the host's root stays: cannot mount a tmpfs on \(newRoot): \(String(cString: strerror(errno)))"))
            return
        }
        if let failure = populate(newRoot, with: opened) ?? Self.remountReadOnly(newRoot)
            ?? Self.verify(newRoot, holds: opened) {
            umount2(newRoot, Int32(MNT_DETACH))
            report.append((.warning, "confinement: the host's root stays: \(failure)"))
            return
        }
        var pivoted: Int32 = 0
        let result = cshim_pivot_root(newRoot, &pivoted)
        if result < 0 {
            let reason = String(cString: strerror(-result))
            guard pivoted != 0 else {
                umount2(newRoot, Int32(MNT_DETACH))
                report.append((.warning, "confinement: the host's root stays: pivot_root: \(reason)"))
                return
            }
            // Under the new root, `newRoot` names nothing of ours: nothing to undo.
            report.append((.warning, "confinement: pivoted into an empty root, but the host's root may stay "
                               + "stacked on it (detaching it or entering the new root failed: \(reason))"))
            return
        }
        report.append((.info, "confinement: pivoted into an empty root holding only \(paths.joined(separator: ", "))"))
    }

    /// Makes each path's mount point in the tmpfs and binds the host file
    /// there; nil, or what failed.
    private func populate(_ newRoot: String, with opened: [(path: String, fd: Int32, info: stat)]) -> String? {
        var bound: [String] = []
        for entry in opened {
            // Reached through an outer bind: making its mount point would write to the host.
            if bound.contains(where: { entry.path.hasPrefix($0 == "/" ? "/" : $0 + "/") }) { continue }
            let components = entry.path.split(separator: "/")
            var target = newRoot
            for component in components.dropLast() {
                target += "/" + component
                if mkdir(target, 0o755) != 0 && errno != EEXIST {
                    return "cannot make \(target): \(String(cString: strerror(errno)))"
                }
            }
            target += components.last.map { "/" + $0 } ?? ""
            if entry.info.st_mode & S_IFMT == S_IFDIR {
                if target != newRoot && mkdir(target, 0o755) != 0 {
                    return "cannot make \(target): \(String(cString: strerror(errno)))"
                }
            } else {
                let file = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard file >= 0 else { return "cannot make \(target): \(String(cString: strerror(errno)))" }
                close(file)
            }
            guard mount("/proc/self/fd/\(entry.fd)", target, nil, UInt(MS_BIND | MS_REC), nil) == 0 else {
                return "cannot bind \(entry.path): \(String(cString: strerror(errno)))"
            }
            bound.append(entry.path)
        }
        return nil
    }

    /// The tmpfs itself read-only (the binds keep their own flags): the
    /// Sentry cannot make files in its root.
    private static func remountReadOnly(_ newRoot: String) -> String? {
        let flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        guard mount(nil, newRoot, nil, UInt(flags), nil) == 0 else {
            return "cannot make \(newRoot) read-only: \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// Each kept path names, in the new root, the file it named on the host
    /// (a path reached through an outer bind may not: a symlink on its way
    /// that points outside that bind).
    private static func verify(_ newRoot: String, holds opened: [(path: String, fd: Int32, info: stat)]) -> String? {
        for entry in opened {
            var info = stat()
            guard stat(newRoot + entry.path, &info) == 0, info.st_dev == entry.info.st_dev,
                  info.st_ino == entry.info.st_ino else {
                return "\(entry.path) is not the same file in the new root"
            }
        }
        return nil
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

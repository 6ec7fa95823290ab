import CShim
import Glibc
import Synchronization

/// The host system calls the VFS makes, in one place: each retries EINTR and
/// turns the host errno into the errno the application sees. This is also the
/// list a host seccomp filter must allow for files.
enum Host {
    /// O_PATH, which Glibc's Swift overlay does not export.
    static let pathOnly = Int32(bitPattern: LinuxFile.pathOnly)

    /// The current host errno as a Linux errno (the numbers are Linux's on both sides).
    static var lastError: SyscallError { SyscallError(rawValue: errno) ?? .eio }

    static func retrying<T: BinaryInteger>(_ call: () -> T) throws(SyscallError) -> T {
        while true {
            let result = call()
            if result >= 0 { return result }
            if errno != EINTR { throw lastError }
        }
    }

    static func openAt(_ directory: Int32, _ name: String, _ flags: Int32, _ mode: UInt32 = 0) throws(SyscallError)
        -> Int32 {
        try retrying { openat(directory, name, flags | O_CLOEXEC, mode_t(mode)) }
    }

    /// Opens `components` (names of one directory level each) beneath
    /// `directory`, never following a symlink, a magic link or `..` out of
    /// it: every host open hostfs makes for a name goes through here, so a
    /// hostile name (from an image, or a bug) cannot reach outside the mount.
    /// openat2 with RESOLVE_BENEATH where the kernel has it; elsewhere a walk
    /// with O_NOFOLLOW at each step. No components opens `directory` itself.
    static func openBeneath(_ directory: Int32, _ components: [String], flags: Int32,
                            mode: UInt32 = 0) throws(SyscallError) -> Int32 {
        for name in components where !isPlainName(name) { throw .einval }
        let path = components.isEmpty ? "." : components.joined(separator: "/")
        guard path.utf8.count < LinuxFile.pathMax else { throw .enametoolong }
        if !openat2Missing.load(ordering: .relaxed) {
            let resolve = CSHIM_RESOLVE_BENEATH | CSHIM_RESOLVE_NO_SYMLINKS | CSHIM_RESOLVE_NO_MAGICLINKS
            let openFlags = UInt64(UInt32(bitPattern: flags | O_NOFOLLOW | O_CLOEXEC))
            // EAGAIN: a concurrent rename made the kernel unsure the walk stayed beneath; try again.
            for _ in 0..<openat2Attempts {
                let fd = cshim_openat2(directory, path, openFlags, UInt64(mode), resolve)
                if fd >= 0 { return fd }
                switch errno {
                case EINTR, EAGAIN: continue
                case ENOSYS: openat2Missing.store(true, ordering: .relaxed)
                default: throw lastError
                }
                break
            }
            if !openat2Missing.load(ordering: .relaxed) { throw .eagain }
        }
        return try walkBeneath(directory, components, flags: flags, mode: mode)
    }

    /// openBeneath without openat2: one level at a time, O_NOFOLLOW at each,
    /// names already checked to be plain (no `..`, no `/`).
    static func walkBeneath(_ directory: Int32, _ components: [String], flags: Int32,
                            mode: UInt32 = 0) throws(SyscallError) -> Int32 {
        for name in components where !isPlainName(name) { throw .einval }
        var current = directory
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }
        for name in components.dropLast() {
            current = try openAt(current, name, pathOnly | O_NOFOLLOW | O_DIRECTORY)
            opened.append(current)
        }
        return try openAt(current, components.last ?? ".", flags | O_NOFOLLOW, mode)
    }

    /// A name `openBeneath` walks one level with: not empty, `.` or `..`,
    /// no `/` or NUL, at most NAME_MAX bytes.
    static func isPlainName(_ name: String) -> Bool {
        let bytes = name.utf8
        return !bytes.isEmpty && bytes.count <= LinuxFile.nameMax && name != "." && name != ".."
            && !bytes.contains(UInt8(ascii: "/")) && !bytes.contains(0)
    }

    /// Set once openat2 answered ENOSYS (kernels before 5.6).
    private static let openat2Missing = Atomic<Bool>(false)
    private static let openat2Attempts = 16

    /// sync(2) and syncfs(2) of the container: the host's sync, as a runc
    /// container's would be (tmpfs data has nowhere to go; hostfs writes sit
    /// in the host's page cache).
    static func syncAll() {
        Glibc.sync()
    }

    static func stat(_ fd: Int32) throws(SyscallError) -> Glibc.stat {
        var result = Glibc.stat()
        _ = try retrying { fstat(fd, &result) }
        return result
    }

    static func statAt(_ directory: Int32, _ name: String, flags: Int32 = AT_SYMLINK_NOFOLLOW) throws(SyscallError)
        -> Glibc.stat {
        var result = Glibc.stat()
        _ = try retrying { fstatat(directory, name, &result, flags) }
        return result
    }

    static func read(_ fd: Int32, count: Int, at position: Int64?) throws(SyscallError) -> [UInt8] {
        guard count > 0 else { return [] }
        // Not zeroed first: the read overwrites what it returns, and zeroing
        // a large buffer (an exec reads the whole binary in 1 MiB reads, the
        // last one at the end of the file) cost as much as the read.
        var failure: SyscallError?
        let buffer = [UInt8](unsafeUninitializedCapacity: count) { raw, initialized in
            initialized = 0
            do throws(SyscallError) {
                initialized = try retrying {
                    position.map { pread(fd, raw.baseAddress, count, off_t($0)) } ?? Glibc.read(fd, raw.baseAddress, count)
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return buffer
    }

    static func write(_ fd: Int32, _ bytes: [UInt8], at position: Int64?) throws(SyscallError) -> Int {
        guard !bytes.isEmpty else { return 0 }
        return try retrying {
            bytes.withUnsafeBytes { raw in
                position.map { pwrite(fd, raw.baseAddress, raw.count, off_t($0)) }
                    ?? Glibc.write(fd, raw.baseAddress, raw.count)
            }
        }
    }

    /// Whether `fd` is ready for `events` right now.
    static func isReady(_ fd: Int32, events: Int16) -> Bool {
        readyEvents(fd, events: events) != 0
    }

    /// The host's poll(2) of one FD without waiting: which of `events` (and
    /// POLLERR, POLLHUP, POLLNVAL) it has now.
    static func readyEvents(_ fd: Int32, events: Int16) -> Int16 {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return poll(&entry, 1, 0) > 0 ? entry.revents : 0
    }

    static func attributes(from host: Glibc.stat) -> FileAttributes {
        var result = FileAttributes()
        result.device = UInt64(host.st_dev)
        result.inodeNumber = UInt64(host.st_ino)
        result.mode = UInt32(host.st_mode)
        result.linkCount = UInt64(host.st_nlink)
        result.uid = UInt32(host.st_uid)
        result.gid = UInt32(host.st_gid)
        result.specialDevice = UInt64(host.st_rdev)
        result.size = Int64(host.st_size)
        result.blockSize = Int64(host.st_blksize)
        result.blocks = Int64(host.st_blocks)
        result.accessTime = FileTime(host.st_atim)
        result.modificationTime = FileTime(host.st_mtim)
        result.changeTime = FileTime(host.st_ctim)
        return result
    }
}

import Glibc

/// The host system calls the VFS makes, in one place: each retries EINTR and
/// turns the host errno into the errno the application sees. This is also the
/// list a host seccomp filter must allow for files.
enum Host {
    /// O_PATH, which Glibc's Swift overlay does not export.
    static let pathOnly: Int32 = 0o10000000

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
        var buffer = [UInt8](repeating: 0, count: count)
        let got = try retrying {
            buffer.withUnsafeMutableBytes { raw in
                position.map { pread(fd, raw.baseAddress, count, off_t($0)) } ?? Glibc.read(fd, raw.baseAddress, count)
            }
        }
        buffer.removeLast(count - got)
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
        result.accessTime = FileTime(seconds: Int64(host.st_atim.tv_sec), nanoseconds: Int64(host.st_atim.tv_nsec))
        result.modificationTime = FileTime(seconds: Int64(host.st_mtim.tv_sec),
                                           nanoseconds: Int64(host.st_mtim.tv_nsec))
        result.changeTime = FileTime(seconds: Int64(host.st_ctim.tv_sec), nanoseconds: Int64(host.st_ctim.tv_nsec))
        return result
    }
}

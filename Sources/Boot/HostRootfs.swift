import Glibc
import Sentry

/// The container's root filesystem as a host directory, read by the Loader
/// before the application runs: the executable, /etc/passwd. Symlinks are
/// followed inside the rootfs (an absolute link target is relative to the
/// rootfs), so nothing outside it can be reached.
struct HostRootfs {
    let directory: String

    static let maxSymlinks = 40

    /// The host path of container path `path` (relative paths start at `cwd`).
    func resolve(_ path: String, cwd: String = "/") throws(SyscallError) -> String {
        var pending = (path.hasPrefix("/") ? path : cwd + "/" + path).split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." || component.isEmpty { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let candidate = directory + "/" + (resolved + [component]).joined(separator: "/")
            var buffer = [CChar](repeating: 0, count: 4097)
            let length = readlink(candidate, &buffer, 4096)
            if length < 0 {
                if errno == EINVAL {
                    resolved.append(component)
                    continue
                }
                throw SyscallError(rawValue: errno) ?? .enoent
            }
            links += 1
            guard links <= HostRootfs.maxSymlinks else { throw .eloop }
            let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") { resolved = [] }
            pending = target.split(separator: "/").map(String.init) + pending
        }
        return directory + "/" + resolved.joined(separator: "/")
    }

    /// The whole file at container path `path`.
    func read(_ path: String, cwd: String = "/", limit: Int = 1 << 30) throws(SyscallError) -> [UInt8] {
        let hostPath = try resolve(path, cwd: cwd)
        let fd = open(hostPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SyscallError(rawValue: errno) ?? .eio }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SyscallError(rawValue: errno) ?? .eio }
        if info.st_mode & S_IFMT == S_IFDIR { throw .eisdir }
        guard Int(info.st_size) <= limit else { throw .efbig }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.read(fd, base + done, raw.count - done)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            done += count
        }
        return Array(bytes[0..<done])
    }

    /// Whether container path `path` is an executable regular file.
    func isExecutableFile(_ path: String, cwd: String = "/") -> Bool {
        guard let hostPath = try? resolve(path, cwd: cwd) else { return false }
        var info = stat()
        guard stat(hostPath, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFREG && info.st_mode & 0o111 != 0
    }
}

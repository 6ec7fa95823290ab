#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The host file operations the OCI layer needs, with errno kept so that
/// messages can say why ("permission denied", not "could not read").
enum HostFiles {
    struct Failure: Error, Equatable, CustomStringConvertible {
        var errno: Int32
        var description: String { String(cString: strerror(errno)) }
    }

    enum Kind: Equatable {
        case directory
        case regularFile
        case other
    }

    /// The kind of file at `path` (following symlinks), or the errno of the failed stat.
    static func kind(_ path: String) -> Result<Kind, Failure> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(Failure(errno: errno)) }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .success(.directory)
        case S_IFREG: return .success(.regularFile)
        default: return .success(.other)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        (try? kind(path).get()) == .directory
    }

    /// Reads a whole file, refusing anything larger than `limit` so a stray device or huge file cannot exhaust memory.
    static func readFile(_ path: String, limit: Int = 16 << 20) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(errno: errno) }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(errno: errno)
            }
            if count == 0 { return result }
            guard result.count + count <= limit else { throw Failure(errno: EFBIG) }
            result.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes `bytes` to `path` so readers see the old file or the new one, never a torn one:
    /// a temporary file in the same directory, fsync, rename.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(Failure) {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(errno: errno) }
        var failure: Failure?
        do { try writeAll(bytes, to: fd) } catch { failure = error }
        if failure == nil && fsync(fd) != 0 { failure = Failure(errno: errno) }
        close(fd)
        if failure == nil && rename(temporary, path) != 0 { failure = Failure(errno: errno) }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    /// Creates a new file that must not exist yet (O_EXCL), for writes that must never overwrite.
    static func createExclusive(_ bytes: [UInt8], at path: String, mode: mode_t = 0o644) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(errno: errno) }
        defer { close(fd) }
        do {
            try writeAll(bytes, to: fd)
        } catch {
            unlink(path)
            throw error
        }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) throws(Failure) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(errno: errno)
            }
            offset += count
        }
    }

    /// Creates `path` and any missing parents; an existing directory is fine.
    static func makeDirectories(_ path: String, mode: mode_t = 0o711) throws(Failure) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0 && errno != EEXIST { throw Failure(errno: errno) }
        }
        guard isDirectory(path) else { throw Failure(errno: ENOTDIR) }
    }

    /// Names in a directory, without "." and "..".
    static func list(_ path: String) throws(Failure) -> [String] {
        guard let dir = opendir(path) else { throw Failure(errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a file or a directory tree without following symlinks; a missing path is fine.
    static func removeTree(_ path: String) throws(Failure) {
        var info = stat()
        if lstat(path, &info) != 0 {
            if errno == ENOENT { return }
            throw Failure(errno: errno)
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in try list(path) {
                try removeTree(path + "/" + name)
            }
            if rmdir(path) != 0 && errno != ENOENT { throw Failure(errno: errno) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw Failure(errno: errno)
        }
    }

    static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Lexical path handling: no symlink resolution, so the paths we report are the ones the user gave.
enum Paths {
    /// `path` made absolute against `base` (the current directory by default), without "." components, "//" or a trailing "/".
    static func absolute(_ path: String, base: String? = nil) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        let directory = base ?? HostFiles.currentDirectory() ?? "/"
        return normalize(directory + "/" + path)
    }

    /// Removes ".", empty components and resolves ".." lexically.
    static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }
}

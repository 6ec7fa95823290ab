#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CShim

/// Directory operations behind atomic image creation: an image is built in a
/// temporary sibling (`IMG.tmp-<random>`) and renamed into place only when
/// complete and synced, so a crash never leaves a directory at the final name
/// that looks like an image.
public enum ImageDirectory {
    static let temporaryMarker = ".tmp-"
    /// A temporary directory's name until its creator holds its lock: the
    /// cleanup of abandoned temporaries does not look at it.
    static let unlockedMarker = ".new-"

    /// `path` without trailing slashes, split into parent and last component.
    public static func split(_ path: String) throws -> (parent: String, name: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard !trimmed.isEmpty, trimmed != "/", trimmed != ".", trimmed != ".." else {
            throw ImageError.invalidArgument("\(path) cannot name an image directory")
        }
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", String(trimmed)) }
        let name = String(trimmed[trimmed.index(after: slash)...])
        guard name != ".", name != ".." else { throw ImageError.invalidArgument("\(path) cannot name an image directory") }
        let parent = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        return (parent, name)
    }

    /// Creates a fresh private temporary directory next to `final`, and the
    /// descriptor holding an exclusive flock on it while its writer lives. It
    /// is made and locked under a name `removeAbandonedTemporaries` skips, then
    /// renamed to its temporary name (the lock is on the directory, not the
    /// name), so another writer's cleanup never sees it unlocked.
    static func makeTemporary(for final: String) throws -> (path: String, lock: Int32) {
        let (parent, name) = try split(final)
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let unlocked = parent + "/" + name + unlockedMarker + suffix
        let path = parent + "/" + name + temporaryMarker + suffix
        guard mkdir(unlocked, 0o700) == 0 else {
            let code = errno
            if code == ENOENT {
                throw ImageError.io(path: parent, operation: "create image in", errno: code)
            }
            throw ImageError.io(path: unlocked, operation: "mkdir", errno: code)
        }
        let lock = retryingEINTR { open(unlocked, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0, rename(unlocked, path) == 0 else {
            let code = errno
            if lock >= 0 { close(lock) }
            rmdir(unlocked)
            throw ImageError.io(path: unlocked, operation: "lock", errno: code)
        }
        return (path, lock)
    }

    static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    /// Whether `path` is a directory an overwrite may replace: an image (it
    /// has a manifest) or empty. Anything else is the user's and stays.
    static func isReplaceable(_ path: String) -> Bool {
        guard fileType(path) == S_IFDIR else { return false }
        if fileType(path + "/" + ImageManifest.fileName) == S_IFREG { return true }
        return (try? entries(path))?.isEmpty ?? false
    }

    /// Moves `temporary` to `final`, replacing an existing image there only
    /// when `overwrite`; syncs the parent so the rename survives a crash (when `durable`).
    static func publish(_ temporary: String, as final: String, overwrite: Bool, durable: Bool = true) throws {
        let (parent, _) = try split(final)
        if cshim_rename_noreplace(temporary, final) != 0 {
            let code = errno
            switch code {
            case EEXIST, ENOTEMPTY:
                guard overwrite else { throw ImageError.imageExists(path: final) }
                guard isReplaceable(final) else {
                    throw ImageError.notAnImage(path: final, reason: "it exists and is not an image directory; refusing to replace it")
                }
                guard cshim_rename_exchange(temporary, final) == 0 else {
                    throw ImageError.io(path: final, operation: "rename", errno: errno)
                }
                try? removeTree(temporary)
            case EINVAL, ENOSYS:
                // Filesystems without renameat2 flags: check, then plain rename.
                if fileType(final) != nil {
                    guard overwrite else { throw ImageError.imageExists(path: final) }
                    guard isReplaceable(final) else {
                        throw ImageError.notAnImage(path: final, reason: "it exists and is not an image directory; refusing to replace it")
                    }
                    try removeTree(final)
                }
                guard rename(temporary, final) == 0 else {
                    throw ImageError.io(path: final, operation: "rename", errno: errno)
                }
            default:
                throw ImageError.io(path: final, operation: "rename", errno: code)
            }
        }
        if durable { try syncDirectory(parent) }
    }

    static func syncDirectory(_ path: String) throws {
        let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw ImageError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw ImageError.io(path: path, operation: "fsync", errno: errno) }
    }

    /// Names in a directory, without `.` and `..`.
    static func entries(_ path: String) throws -> [String] {
        guard let stream = opendir(path) else { throw ImageError.io(path: path, operation: "opendir", errno: errno) }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes `path` and everything under it (never following symlinks).
    static func removeTree(_ path: String) throws {
        if fileType(path) == S_IFDIR {
            for name in try entries(path) {
                try removeTree(path + "/" + name)
            }
            guard rmdir(path) == 0 else { throw ImageError.io(path: path, operation: "rmdir", errno: errno) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw ImageError.io(path: path, operation: "unlink", errno: errno)
        }
    }

    /// Removes temporary directories for `final` left by writers that died
    /// (a crash mid-checkpoint leaves one): those whose flock no process holds.
    /// A lock, unlike the PID in the name, means the same in every PID
    /// namespace (each sandbox is the init of its own, PID 1).
    static func removeAbandonedTemporaries(for final: String) {
        guard let (parent, name) = try? split(final), let names = try? entries(parent) else { return }
        let prefix = name + temporaryMarker
        for entry in names where entry.hasPrefix(prefix) {
            let path = parent + "/" + entry
            let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { try? removeTree(path) }
            close(fd)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CShim

/// The image layer's host calls, in one place: each retries `EINTR`, finishes
/// short transfers, and turns failures into `ImageError.io` naming the path.
struct ImageFile: ~Copyable {
    let fd: Int32
    let path: String

    /// Creates a new file (never replaces one: images are written into a fresh
    /// temporary directory), readable by its owner only: it holds a
    /// container's memory.
    static func create(_ path: String) throws -> ImageFile {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw ImageError.io(path: path, operation: "create", errno: errno) }
        return ImageFile(fd: fd, path: path)
    }

    static func openForReading(_ path: String) throws -> ImageFile {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw ImageError.io(path: path, operation: "open", errno: errno) }
        return ImageFile(fd: fd, path: path)
    }

    deinit {
        close(fd)
    }

    func size() throws -> UInt64 {
        try regularFileSize(fd: fd, path: path)
    }

    func sync() throws {
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw ImageError.io(path: path, operation: "fsync", errno: errno) }
    }
}

/// The size of the file open on `fd`, which must be a regular file.
func regularFileSize(fd: Int32, path: String) throws -> UInt64 {
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw ImageError.io(path: path, operation: "stat", errno: errno) }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw ImageError.io(path: path, operation: "open", errno: EISDIR) }
    return UInt64(max(info.st_size, 0))
}

/// Writes all of `bytes` to `fd` at its current offset.
func writeAll(fd: Int32, path: String, _ bytes: UnsafeRawBufferPointer) throws {
    guard var cursor = bytes.baseAddress else { return }
    var left = bytes.count
    while left > 0 {
        let written = write(fd, cursor, left)
        if written < 0 {
            if errno == EINTR { continue }
            throw ImageError.io(path: path, operation: "write", errno: errno)
        }
        if written == 0 { throw ImageError.io(path: path, operation: "write", errno: ENOSPC) }
        cursor += written
        left -= written
    }
}

/// Starts writing `fd`'s dirty pages in `from..<to` to disk without waiting.
/// Best effort: a file that cannot (a pipe, some file systems) is simply
/// written back at the final fsync.
func startWriteback(fd: Int32, from: UInt64, to: UInt64) {
    guard to > from else { return }
    _ = retryingEINTR { cshim_start_writeback(fd, Int64(from), Int64(to - from)) }
}

/// Reads exactly `buffer.count` bytes at `offset`; false if the file ends first.
func readExactly(fd: Int32, path: String, at offset: UInt64,
                 into buffer: UnsafeMutableRawBufferPointer) throws -> Bool {
    guard var cursor = buffer.baseAddress else { return true }
    var left = buffer.count
    var position = off_t(offset)
    while left > 0 {
        let got = pread(fd, cursor, left, position)
        if got < 0 {
            if errno == EINTR { continue }
            throw ImageError.io(path: path, operation: "read", errno: errno)
        }
        if got == 0 { return false }
        cursor += got
        left -= got
        position += off_t(got)
    }
    return true
}

func retryingEINTR(_ call: () -> Int32) -> Int32 {
    while true {
        let result = call()
        if result < 0 && errno == EINTR { continue }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What runc's callers expect around a checkpoint image, beyond our own files.
enum CheckpointImage {
    /// CRIU's image-directory index. podman refuses to restore a checkpoint
    /// without it (it only checks that it exists); our restore does not read it.
    static let inventoryName = "inventory.img"

    /// Writes an empty `inventory.img` in the image directory.
    static func markForCRIUCallers(_ imagePath: String) throws {
        let path = imagePath + "/" + inventoryName
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw RunscError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
    }

    /// Appends `line` to `file` in `--work-path` (runc writes CRIU's dump.log
    /// and restore.log there); a failure to log is not the checkpoint's failure.
    static func log(_ line: String, in workPath: String, file: String) {
        let fd = open(workPath + "/" + file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Everything that can go wrong writing or reading an image. Each case names
/// the file (and, for frames, the frame index and byte offset) so a user can
/// tell a full disk from a corrupted copy from a too-new image.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// A system call failed: `operation` on `path` returned `errno`.
    case io(path: String, operation: String, errno: Int32)
    /// The final image path already exists and overwriting was not requested.
    case imageExists(path: String)
    /// A path that should be an image directory is something else.
    case notAnImage(path: String, reason: String)
    /// The manifest (or a file header) has a format version this build does not read.
    case unsupportedFormatVersion(path: String, found: Int, supported: [Int])
    /// The manifest is missing, malformed or inconsistent.
    case badManifest(path: String, reason: String)
    /// A file's size on disk differs from the manifest's.
    case sizeMismatch(path: String, expected: UInt64, actual: UInt64)
    /// A file's digest differs from the manifest's.
    case digestMismatch(path: String, expected: String, actual: String)
    /// A file's header or trailer is damaged.
    case corruptFile(path: String, offset: UInt64, reason: String)
    /// Frame `frame` (0-based), whose header starts at byte `offset`, is damaged.
    case corruptFrame(path: String, frame: Int, offset: UInt64, reason: String)
    /// The caller passed something the image layer cannot store or fill.
    case invalidArgument(String)
    /// A writer or reader was used out of order (e.g. after `commit`).
    case misuse(String)

    public var description: String {
        switch self {
        case let .io(path, operation, code):
            return "\(operation) \(path): \(String(cString: strerror(code))) (\(errnoName(code)))"
        case let .imageExists(path):
            return "\(path): an image already exists there (pass overwrite to replace it)"
        case let .notAnImage(path, reason):
            return "\(path): not an image directory: \(reason)"
        case let .unsupportedFormatVersion(path, found, supported):
            let list = supported.map(String.init).joined(separator: ", ")
            return "\(path): image format version \(found) is not supported; this build reads version(s) \(list)"
        case let .badManifest(path, reason):
            return "\(path): bad manifest: \(reason)"
        case let .sizeMismatch(path, expected, actual):
            return "\(path): size is \(actual) bytes, the manifest says \(expected)"
        case let .digestMismatch(path, expected, actual):
            return "\(path): digest is \(actual), the manifest says \(expected)"
        case let .corruptFile(path, offset, reason):
            return "\(path): corrupt at byte \(offset): \(reason)"
        case let .corruptFrame(path, frame, offset, reason):
            return "\(path): frame \(frame) at byte \(offset): \(reason)"
        case let .invalidArgument(reason):
            return "invalid argument: \(reason)"
        case let .misuse(reason):
            return "image API misuse: \(reason)"
        }
    }
}

/// The symbolic name of the errnos a user can act on; others print as a number.
private func errnoName(_ code: Int32) -> String {
    switch code {
    case ENOSPC: "ENOSPC"
    case EDQUOT: "EDQUOT"
    case EROFS: "EROFS"
    case EACCES: "EACCES"
    case EPERM: "EPERM"
    case ENOENT: "ENOENT"
    case EEXIST: "EEXIST"
    case ENOTDIR: "ENOTDIR"
    case EISDIR: "EISDIR"
    case EIO: "EIO"
    case ENOTEMPTY: "ENOTEMPTY"
    case EXDEV: "EXDEV"
    case EMFILE: "EMFILE"
    case ENOMEM: "ENOMEM"
    default: "errno \(code)"
    }
}

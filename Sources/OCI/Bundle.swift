import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An OCI bundle: a directory with `config.json` and the root filesystem it names.
///
/// Loading checks what the runtime relies on, so a bad bundle is reported before
/// anything starts, naming the file, the field and why.
public struct Bundle: Sendable, Equatable {
    /// The bundle directory, absolute.
    public var directory: String
    public var spec: Spec
    /// `root.path` resolved against the bundle directory: absolute, and an existing directory when loaded.
    public var rootfs: String

    public var configPath: String { directory + "/" + Bundle.configFileName }

    public static let configFileName = "config.json"

    public init(directory: String, spec: Spec, rootfs: String) {
        self.directory = directory
        self.spec = spec
        self.rootfs = rootfs
    }

    /// Reads, decodes and validates `directory/config.json` (a relative `directory` is taken from the current directory).
    public static func load(directory: String) throws(BundleError) -> Bundle {
        let directory = Paths.absolute(directory)
        switch HostFiles.kind(directory) {
        case .failure(let failure) where failure.errno == ENOENT:
            throw BundleError(.bundleNotFound, file: directory, reason: "bundle directory does not exist")
        case .failure(let failure):
            throw BundleError(.bundleNotFound, file: directory, reason: "cannot open the bundle directory: \(failure)")
        case .success(let kind) where kind != .directory:
            throw BundleError(.bundleNotADirectory, file: directory, reason: "the bundle is not a directory")
        case .success:
            break
        }
        let configPath = directory + "/" + configFileName
        let bytes: [UInt8]
        do {
            bytes = try HostFiles.readFile(configPath)
        } catch where error.errno == ENOENT {
            throw BundleError(.configMissing, file: configPath, reason: "no such file (`runsc spec` writes a default one)")
        } catch {
            throw BundleError(.configUnreadable, file: configPath, reason: "cannot read: \(error)")
        }
        let spec = try decode(bytes, file: configPath)
        let rootfs = try validate(spec, directory: directory, file: configPath)
        return Bundle(directory: directory, spec: spec, rootfs: rootfs)
    }

    /// Decodes `config.json` bytes, turning decoder errors into messages that name the field.
    public static func decode(_ bytes: [UInt8], file: String) throws(BundleError) -> Spec {
        do {
            return try JSONDecoder().decode(Spec.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw BundleError(decoding: error, bytes: bytes, file: file)
        } catch {
            throw BundleError(.malformedJSON, file: file, reason: "cannot decode: \(error)")
        }
    }

    /// Reads and decodes an OCI process JSON file (`runsc exec --process`),
    /// with the same messages as config.json's; args must not be empty.
    public static func loadProcess(_ path: String) throws(BundleError) -> Spec.Process {
        let file = Paths.absolute(path)
        let bytes: [UInt8]
        do {
            bytes = try HostFiles.readFile(file, limit: 1 << 20)
        } catch {
            throw BundleError(.configUnreadable, file: file, reason: "cannot read: \(error)")
        }
        let process: Spec.Process
        do {
            process = try JSONDecoder().decode(Spec.Process.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw BundleError(decoding: error, bytes: bytes, file: file)
        } catch {
            throw BundleError(.malformedJSON, file: file, reason: "cannot decode: \(error)")
        }
        if process.args.isEmpty { throw BundleError(.invalidField, file: file, field: "args", reason: "must not be empty") }
        if !process.cwd.isEmpty && !process.cwd.hasPrefix("/") {
            throw BundleError(.invalidField, file: file, field: "cwd", reason: "must be an absolute path")
        }
        return process
    }

    /// Checks the fields this runtime needs and returns the absolute rootfs path.
    static func validate(_ spec: Spec, directory: String, file: String) throws(BundleError) -> String {
        func invalid(_ field: String, _ reason: String) -> BundleError {
            BundleError(.invalidField, file: file, field: field, reason: reason)
        }
        if spec.ociVersion.isEmpty {
            throw invalid("ociVersion", "missing (the runtime-spec requires it, e.g. \"\(Spec.currentVersion)\")")
        }
        if !spec.ociVersion.hasPrefix("1.") {
            throw invalid("ociVersion", "unsupported version \"\(spec.ociVersion)\" (this runtime reads 1.x)")
        }

        guard let root = spec.root else { throw invalid("root", "missing: the config must name the root filesystem") }
        if root.path.isEmpty { throw invalid("root.path", "missing or empty") }
        let rootfs = Paths.absolute(root.path, base: directory)
        switch HostFiles.kind(rootfs) {
        case .failure(let failure) where failure.errno == ENOENT:
            throw invalid("root.path", "\(rootfs) does not exist")
        case .failure(let failure):
            throw invalid("root.path", "cannot open \(rootfs): \(failure)")
        case .success(let kind) where kind != .directory:
            throw invalid("root.path", "\(rootfs) is not a directory")
        case .success:
            break
        }

        guard let process = spec.process else { throw invalid("process", "missing: the config must say what to run") }
        if process.args.isEmpty { throw invalid("process.args", "empty: there is no program to run") }
        if process.args[0].isEmpty { throw invalid("process.args[0]", "empty program name") }
        if process.cwd.isEmpty { throw invalid("process.cwd", "missing (use \"/\" for the root)") }
        if !process.cwd.hasPrefix("/") { throw invalid("process.cwd", "\"\(process.cwd)\" is not an absolute path") }
        for (index, variable) in process.env.enumerated() where !variable.contains("=") || variable.hasPrefix("=") {
            throw invalid("process.env[\(index)]", "\"\(variable)\" is not of the form NAME=VALUE")
        }
        var limitTypes: Set<String> = []
        for (index, limit) in process.rlimits.enumerated() {
            if !Spec.Rlimit.knownTypes.contains(limit.type) {
                throw invalid("process.rlimits[\(index)].type", "unknown resource limit \"\(limit.type)\"")
            }
            if !limitTypes.insert(limit.type).inserted {
                throw invalid("process.rlimits[\(index)].type", "\(limit.type) is given more than once")
            }
            if limit.soft > limit.hard {
                throw invalid("process.rlimits[\(index)]", "soft limit \(limit.soft) exceeds hard limit \(limit.hard)")
            }
        }

        for (index, mount) in spec.mounts.enumerated() {
            if mount.destination.isEmpty { throw invalid("mounts[\(index)].destination", "missing") }
            if !mount.destination.hasPrefix("/") {
                throw invalid("mounts[\(index)].destination", "\"\(mount.destination)\" is not an absolute path")
            }
        }

        var namespaceTypes: Set<String> = []
        for (index, namespace) in (spec.linux?.namespaces ?? []).enumerated() {
            if !Spec.Namespace.knownTypes.contains(namespace.type) {
                throw invalid("linux.namespaces[\(index)].type", "unknown namespace type \"\(namespace.type)\"")
            }
            if !namespaceTypes.insert(namespace.type).inserted {
                throw invalid("linux.namespaces[\(index)].type", "namespace \"\(namespace.type)\" is given more than once")
            }
        }
        if let personality = spec.linux?.personality {
            if !Spec.Personality.knownDomains.contains(personality.domain) {
                throw invalid("linux.personality.domain", "\"\(personality.domain)\" is not supported (only LINUX)")
            }
            for (index, flag) in (personality.flags ?? []).enumerated() where !Spec.Personality.knownFlags.contains(flag) {
                throw invalid("linux.personality.flags[\(index)]", "unknown flag \"\(flag)\" (only ADDR_NO_RANDOMIZE)")
            }
        }
        do {
            _ = try spec.linux?.seccomp?.parsed()
        } catch {
            throw invalid("linux.seccomp.\(error.field)", error.reason)
        }
        return rootfs
    }
}

extension Spec.Rlimit {
    /// The limits setrlimit(2) knows, by their runtime-spec names.
    public static let knownTypes: Set<String> = [
        "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
        "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
    ]
}

/// Why a bundle cannot be used: the file (or directory), the field when there is one, and the reason.
public struct BundleError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case bundleNotFound
        case bundleNotADirectory
        case configMissing
        case configUnreadable
        case malformedJSON
        case invalidField
    }

    public var kind: Kind
    public var file: String
    /// The field as a path into the JSON (`process.args[0]`), nil when the problem is the file itself.
    public var field: String?
    public var reason: String

    public init(_ kind: Kind, file: String, field: String? = nil, reason: String) {
        self.kind = kind
        self.file = file
        self.field = field
        self.reason = reason
    }

    public var description: String {
        if let field { return "\(file): \(field): \(reason)" }
        return "\(file): \(reason)"
    }

    init(decoding error: DecodingError, bytes: [UInt8], file: String) {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            if let syntax = JSONSyntaxError.firstError(in: bytes) {
                self.init(.malformedJSON, file: file, reason: "malformed JSON at \(syntax)")
            } else {
                self.init(.malformedJSON, file: file, reason: "cannot decode: \(context.debugDescription)")
            }
        case .dataCorrupted(let context):
            self.init(.invalidField, file: file, field: Self.fieldPath(context.codingPath), reason: context.debugDescription)
        case .typeMismatch(let type, let context):
            let field = Self.fieldPath(context.codingPath)
            if context.codingPath.isEmpty {
                self.init(.malformedJSON, file: file, reason: "the top level must be a JSON object")
            } else {
                self.init(.invalidField, file: file, field: field, reason: "expected \(Self.kindName(type))\(Self.found(in: context.debugDescription))")
            }
        case .valueNotFound(let type, let context):
            self.init(.invalidField, file: file, field: Self.fieldPath(context.codingPath), reason: "expected \(Self.kindName(type)), found null")
        case .keyNotFound(let key, let context):
            self.init(.invalidField, file: file, field: Self.fieldPath(context.codingPath + [key]), reason: "missing (required)")
        @unknown default:
            self.init(.malformedJSON, file: file, reason: "cannot decode: \(error)")
        }
    }

    /// `process.args[0]` from a coding path.
    static func fieldPath(_ path: [any CodingKey]) -> String {
        var result = ""
        for key in path {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return result.isEmpty ? "(top level)" : result
    }

    /// ", found a number" from the decoder's "... but found a number instead." when it says so.
    static func found(in description: String) -> String {
        guard let start = description.firstRange(of: "but found ") else { return "" }
        var rest = description[start.upperBound...]
        if let end = rest.firstRange(of: " instead") { rest = rest[..<end.lowerBound] }
        return ", found " + rest
    }

    /// A JSON-level name for the Swift type the decoder wanted.
    static func kindName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is any BinaryInteger.Type: return "an integer"
        case is any BinaryFloatingPoint.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a value of type \(name)"
        }
    }
}

import FoundationEssentials

/// `manifest.json`: what an image is, readable by people and checked before
/// anything else is read. Restore compares architecture, CPU features and
/// page size with the host; the reader checks the other files' sizes and
/// digests against `files`.
public struct ImageManifest: Codable, Sendable, Equatable {
    /// The version this build writes. 2: state.img and pages.img are framed
    /// files of version 2 (FrameFormat: no uncompressed checksum on
    /// compressed frames, pages frames with every page present), so a build
    /// that reads only 1 refuses the image at its manifest.
    public static let currentFormatVersion = 2
    /// Every version this build reads; older ones stay here while their
    /// golden images under `fixtures/snapshots/` still restore.
    public static let readableFormatVersions = [1, 2]
    public static let fileName = "manifest.json"
    public static let stateFileName = "state.img"
    public static let pagesFileName = "pages.img"

    public var formatVersion: Int
    public var runtimeVersion: String
    public var created: Date
    public var containerIDs: [String]
    public var compression: Compression
    /// The zstd level used, when `compression` is zstd.
    public var compressionLevel: Int?
    public var architecture: String
    /// CPU features the saved state relies on (e.g. XSAVE components in use);
    /// restore refuses a host that lacks one.
    public var cpuFeatures: [String]
    public var pageSize: Int
    /// `state.img` and `pages.img`, by file name.
    public var files: [String: ImageFileEntry]
    /// Open-ended facts for later use (spec digest, checkpoint reason, ...).
    public var metadata: [String: String]
}

/// Size and digest of one file of an image, plus totals for a quick summary.
public struct ImageFileEntry: Codable, Sendable, Equatable {
    public var size: UInt64
    /// `h64:<16 hex digits>`: the checksum of the file's headers and trailer,
    /// which carry every frame's data checksum.
    public var digest: String
    public var frames: Int
    public var uncompressedBytes: UInt64

    init(_ summary: FramedFileSummary) {
        size = summary.size
        digest = summary.digest
        frames = summary.frames
        uncompressedBytes = summary.uncompressedBytes
    }
}

/// What the caller knows about the image it is writing; the writer adds
/// compression, files and format version.
public struct ImageInfo: Sendable, Equatable {
    public var runtimeVersion: String
    public var containerIDs: [String]
    public var cpuFeatures: [String]
    public var architecture: String
    public var pageSize: Int
    public var created: Date
    public var metadata: [String: String]

    public init(runtimeVersion: String, containerIDs: [String], cpuFeatures: [String] = [],
                architecture: String = ImageInfo.hostArchitecture, pageSize: Int = 4096,
                created: Date = Date(), metadata: [String: String] = [:]) {
        self.runtimeVersion = runtimeVersion
        self.containerIDs = containerIDs
        self.cpuFeatures = cpuFeatures
        self.architecture = architecture
        self.pageSize = pageSize
        self.created = created
        self.metadata = metadata
    }

    /// The architecture name this build runs on, as `uname -m` spells it.
    public static var hostArchitecture: String {
        #if arch(x86_64)
        "x86_64"
        #elseif arch(arm64)
        "aarch64"
        #else
        "unknown"
        #endif
    }
}

extension ImageManifest {
    /// Manifests are small; anything larger is not one of ours.
    static let maxSize = 1 << 20

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        var bytes = Array(try encoder.encode(self))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Decodes a manifest, checking the format version before the rest so a
    /// newer image is refused with the versions this build reads rather than
    /// with a confusing field error.
    static func decode(_ bytes: [UInt8], path: String) throws -> ImageManifest {
        struct VersionOnly: Decodable { var formatVersion: Int }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let data = Data(bytes)
        let version: Int
        do {
            version = try decoder.decode(VersionOnly.self, from: data).formatVersion
        } catch {
            throw ImageError.badManifest(path: path, reason: "no readable formatVersion: \(describe(error))")
        }
        guard readableFormatVersions.contains(version) else {
            throw ImageError.unsupportedFormatVersion(path: path, found: version, supported: readableFormatVersions)
        }
        let manifest: ImageManifest
        do {
            manifest = try decoder.decode(ImageManifest.self, from: data)
        } catch {
            throw ImageError.badManifest(path: path, reason: describe(error))
        }
        guard manifest.pageSize >= 4096, manifest.pageSize <= 65536, manifest.pageSize.nonzeroBitCount == 1 else {
            throw ImageError.badManifest(path: path, reason: "pageSize \(manifest.pageSize) is not a power of two in 4096...65536")
        }
        for name in [stateFileName, pagesFileName] where manifest.files[name] == nil {
            throw ImageError.badManifest(path: path, reason: "files has no entry for \(name)")
        }
        return manifest
    }
}

/// A decoding error as one line: which key and what was wrong.
private func describe(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func where_(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
    }
    switch error {
    case let .keyNotFound(key, context):
        return "missing key \(key.stringValue)" + (context.codingPath.isEmpty ? "" : " in \(where_(context))")
    case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
        return where_(context)
    @unknown default:
        return "\(error)"
    }
}

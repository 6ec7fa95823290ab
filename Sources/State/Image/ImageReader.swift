#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Opens an image directory and checks it before anything is restored: the
/// manifest (a known format version, the files it lists), each file's size,
/// and each file's digest, recomputed by walking every frame header to the
/// trailer (which also proves no frame is missing). Frame data checksums are
/// checked as frames are read (`readState`, `readPages`) or by `verify()`, so
/// a restore reads the pages file once.
///
/// The files stay open for the reader's lifetime, so what was checked is what
/// is read even if the directory is replaced meanwhile.
public final class ImageReader {
    public let directory: String
    public let manifest: ImageManifest
    /// Per-file totals from the header walk, by file name.
    public let files: [String: FramedFileSummary]
    /// Worker threads for decompression; 0 decompresses on the calling thread.
    public var workers: Int
    private let state: ImageFile
    private let pages: ImageFile
    /// Every frame of `pages.img`, from the header walk at open.
    private let pagesFrames: [FrameLocation]
    private let manifestSize: UInt64

    /// With `verifyData`, also decodes every frame now (`verify()`), for
    /// callers that want all checks before deciding anything.
    public init(directory: String, workers: Int? = nil, verifyData: Bool = false) throws {
        self.directory = directory
        self.workers = max(workers ?? availableProcessors(), 0)
        guard ImageDirectory.fileType(directory) == S_IFDIR else {
            if ImageDirectory.fileType(directory) == nil {
                throw ImageError.io(path: directory, operation: "open image", errno: ENOENT)
            }
            throw ImageError.notAnImage(path: directory, reason: "not a directory")
        }
        let manifestPath = directory + "/" + ImageManifest.fileName
        let (bytes, size) = try Self.readManifest(manifestPath)
        manifestSize = size
        manifest = try ImageManifest.decode(bytes, path: manifestPath)
        state = try ImageFile.openForReading(directory + "/" + ImageManifest.stateFileName)
        pages = try ImageFile.openForReading(directory + "/" + ImageManifest.pagesFileName)
        var files: [String: FramedFileSummary] = [:]
        files[ImageManifest.stateFileName] = try Self.check(state, kind: .state, manifest: manifest,
                                                            name: ImageManifest.stateFileName).summary
        let (pagesSummary, pagesFrames) = try Self.check(pages, kind: .pages, manifest: manifest,
                                                         name: ImageManifest.pagesFileName)
        files[ImageManifest.pagesFileName] = pagesSummary
        self.files = files
        self.pagesFrames = pagesFrames
        if verifyData { try verify() }
    }

    /// The encoded object graph. Every frame is checked before its bytes are
    /// kept; memory grows only with data that decoded and checked out.
    public func readState() throws -> [UInt8] {
        let reader = try FrameReader(fd: state.fd, path: state.path, workers: workers)
        let bytes = try reader.readAll()
        try confirmUnchanged(reader.summary, name: ImageManifest.stateFileName)
        return bytes
    }

    /// Copies the saved pages into `memory` (the new MemoryFile's mapping,
    /// zero-filled: pages the image leaves out are not touched), decompressing
    /// on all workers. If this throws, the memory's contents are unspecified.
    @discardableResult
    public func readPages(into memory: UnsafeMutableRawBufferPointer) throws -> FramedFileSummary {
        let summary = try PagesFile.read(fd: pages.fd, path: pages.path, into: memory,
                                         pageSize: manifest.pageSize, workers: workers)
        try confirmUnchanged(summary, name: ImageManifest.pagesFileName)
        return summary
    }

    /// Checks the data of all of `pages.img` now (its headers and digest were
    /// checked at open) and returns a loader that fills `memory` in the
    /// background once started (the restore's way: the program runs while
    /// its memory arrives). `onFinish` hears of the end or the first failure.
    public func pagesLoader(into memory: UnsafeMutableRawBufferPointer,
                            onFinish: @escaping @Sendable (Result<Int64, ImageError>) -> Void) throws -> PagesLoader {
        let fd = fcntl(pages.fd, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw ImageError.io(path: pages.path, operation: "dup", errno: errno) }
        return try PagesLoader(fd: fd, path: pages.path, frames: pagesFrames, pageSize: manifest.pageSize,
                               memory: memory, workers: max(workers, 1), onFinish: onFinish)
    }

    /// The bytes of memory a destination must have to hold every saved page.
    public var requiredMemorySize: UInt64 {
        files[ImageManifest.pagesFileName]?.endOffset ?? 0
    }

    /// Decodes every frame of both files and checks every checksum, without
    /// keeping anything: `runsc statefile --verify`, or a check before a copy.
    public func verify() throws {
        let reader = try FrameReader(fd: state.fd, path: state.path, workers: workers)
        try reader.forEachChunk { _ in }
        try confirmUnchanged(reader.summary, name: ImageManifest.stateFileName)
        let summary = try PagesFile.read(fd: pages.fd, path: pages.path, into: nil,
                                         pageSize: manifest.pageSize, workers: workers)
        try confirmUnchanged(summary, name: ImageManifest.pagesFileName)
    }

    /// Sizes, frame counts and compression for `runsc statefile`.
    public var summary: ImageSummary {
        ImageSummary(directory: directory, manifest: manifest, manifestSize: manifestSize, files: files)
    }

    private func confirmUnchanged(_ summary: FramedFileSummary?, name: String) throws {
        let path = directory + "/" + name
        guard let summary, let expected = manifest.files[name] else {
            throw ImageError.corruptFile(path: path, offset: 0, reason: "read ended without a trailer")
        }
        guard summary.digest == expected.digest else {
            throw ImageError.digestMismatch(path: path, expected: expected.digest, actual: summary.digest)
        }
    }

    private static func readManifest(_ path: String) throws -> ([UInt8], UInt64) {
        let file = try ImageFile.openForReading(path)
        let size = try file.size()
        guard size <= UInt64(ImageManifest.maxSize) else {
            throw ImageError.badManifest(path: path, reason: "\(size) bytes is too large for a manifest")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let complete = try bytes.withUnsafeMutableBytes { raw in
            try readExactly(fd: file.fd, path: path, at: 0, into: raw)
        }
        guard complete else { throw ImageError.badManifest(path: path, reason: "file shrank while being read") }
        return (bytes, size)
    }

    /// Size against the manifest, then a walk over every header to the trailer
    /// and the digest against the manifest.
    private static func check(_ file: borrowing ImageFile, kind: FrameKind, manifest: ImageManifest,
                              name: String) throws -> (summary: FramedFileSummary, frames: [FrameLocation]) {
        guard let expected = manifest.files[name] else {
            throw ImageError.badManifest(path: file.path, reason: "files has no entry for \(name)")
        }
        let size = try file.size()
        guard size == expected.size else {
            throw ImageError.sizeMismatch(path: file.path, expected: expected.size, actual: size)
        }
        let source = try FramedFileSource(fd: file.fd, path: file.path, kind: kind)
        if kind == .pages && Int(source.header.pageSize) != manifest.pageSize {
            throw ImageError.corruptFile(path: file.path, offset: 12,
                                         reason: "page size \(source.header.pageSize) differs from the manifest's \(manifest.pageSize)")
        }
        let (summary, frames) = try source.scan()
        guard summary.digest == expected.digest else {
            throw ImageError.digestMismatch(path: file.path, expected: expected.digest, actual: summary.digest)
        }
        return (summary, frames)
    }
}

/// What `runsc statefile` prints about an image's storage.
public struct ImageSummary: Sendable, Codable, Equatable, CustomStringConvertible {
    public var directory: String
    public var manifest: ImageManifest
    public var manifestSize: UInt64
    /// `state.img` and `pages.img`, by name.
    public var files: [String: FramedFileSummary]

    /// Bytes on disk, all files.
    public var totalSize: UInt64 {
        files.values.reduce(manifestSize) { $0 + $1.size }
    }

    public var description: String {
        var lines = ["image \(directory): format \(manifest.formatVersion), \(manifest.compression.rawValue)"
                     + (manifest.compressionLevel.map { " level \($0)" } ?? "") + ", \(totalSize) bytes on disk"]
        lines.append(pad("file", 14) + pad("size", 14) + pad("frames", 8) + pad("data", 14) + pad("memory", 14) + "ratio")
        lines.append(pad(ImageManifest.fileName, 14) + pad(String(manifestSize), 14))
        for name in [ImageManifest.stateFileName, ImageManifest.pagesFileName] {
            guard let file = files[name] else { continue }
            let ratio = (file.compressionRatio * 100).rounded() / 100
            lines.append(pad(name, 14) + pad(String(file.size), 14) + pad(String(file.frames), 8)
                         + pad(String(file.uncompressedBytes), 14) + pad(String(file.spanBytes), 14) + "\(ratio)")
        }
        return lines.joined(separator: "\n")
    }
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import FoundationEssentials

/// Writes an image directory: `writeState`, `writePages` (optional: an image
/// without memory gets an empty pages file), then `commit`. Everything goes
/// into a private temporary sibling directory that `commit` syncs and renames
/// into place; any failure, or dropping the writer without committing,
/// removes it, so the final name only ever holds a complete image.
public final class ImageWriter {
    /// Where the image will be once committed.
    public let directory: String
    /// Where it is being written meanwhile.
    public let temporaryDirectory: String
    /// The descriptor whose flock marks `temporaryDirectory` as in use
    /// (ImageDirectory.removeAbandonedTemporaries); -1 once let go.
    private var temporaryLock: Int32
    public let info: ImageInfo
    public let options: FrameOptions
    private let overwrite: Bool
    /// Whether files and directories are synced before the image is published
    /// (off only for images that do not outlive the process: the save/restore test mode's).
    private let durable: Bool
    private var files: [String: FramedFileSummary] = [:]
    private var phase = Phase.writing

    private enum Phase { case writing, committed, abandoned }

    /// Refuses up front if `directory` exists and `overwrite` is false (and
    /// checks again, atomically, at commit).
    public init(directory: String, compression: Compression = .lz4, level: Int = 1, info: ImageInfo,
                overwrite: Bool = false, workers: Int? = nil, chunkSize: Int = 1 << 20, durable: Bool = true) throws {
        guard info.pageSize >= 4096, info.pageSize <= 65536, info.pageSize.nonzeroBitCount == 1 else {
            throw ImageError.invalidArgument("page size \(info.pageSize) is not a power of two in 4096...65536")
        }
        options = try FrameOptions(compression: compression, level: level, chunkSize: chunkSize,
                                   workers: workers).validated()
        guard options.chunkSize % info.pageSize == 0 else {
            throw ImageError.invalidArgument("chunk size \(chunkSize) is not a multiple of the page size \(info.pageSize)")
        }
        self.directory = directory
        self.info = info
        self.overwrite = overwrite
        self.durable = durable
        if ImageDirectory.fileType(directory) != nil {
            guard overwrite else { throw ImageError.imageExists(path: directory) }
            guard ImageDirectory.isReplaceable(directory) else {
                throw ImageError.notAnImage(path: directory, reason: "it exists and is not an image directory; refusing to replace it")
            }
        }
        ImageDirectory.removeAbandonedTemporaries(for: directory)
        (temporaryDirectory, temporaryLock) = try ImageDirectory.makeTemporary(for: directory)
    }

    deinit {
        if phase == .writing { abandon() }
        releaseLock()
    }

    private func releaseLock() {
        if temporaryLock >= 0 { close(temporaryLock) }
        temporaryLock = -1
    }

    /// Stores the encoded object graph as `state.img`.
    @discardableResult
    public func writeState(_ bytes: [UInt8]) throws -> FramedFileSummary {
        try bytes.withUnsafeBytes { raw in try writeState(raw) }
    }

    @discardableResult
    public func writeState(_ bytes: UnsafeRawBufferPointer) throws -> FramedFileSummary {
        try writeFile(ImageManifest.stateFileName) { fd, path in
            let writer = try FrameWriter(fd: fd, path: path, options: options)
            try writer.write(bytes)
            return try writer.finish()
        }
    }

    /// Stores the pages of `ranges` (page-aligned byte ranges of `memory`, the
    /// MemoryFile's mapping) as `pages.img`, leaving out all-zero pages. The
    /// memory must not change until this returns. `file`, the file `memory`
    /// maps from its start, lets the holes be skipped without reading them
    /// (which would allocate them).
    @discardableResult
    public func writePages(memory: UnsafeRawBufferPointer, ranges: [Range<UInt64>],
                           file: Int32 = -1) throws -> FramedFileSummary {
        try writeFile(ImageManifest.pagesFileName) { fd, path in
            try PagesFile.write(fd: fd, path: path, memory: memory, ranges: ranges, pageSize: info.pageSize,
                                options: options, memoryFile: file)
        }
    }

    /// Writes the manifest, syncs everything and renames the image into place.
    @discardableResult
    public func commit() throws -> ImageManifest {
        guard phase == .writing else { throw ImageError.misuse("commit after commit or after a failure") }
        guard files[ImageManifest.stateFileName] != nil else {
            throw ImageError.misuse("commit before writeState")
        }
        do {
            if files[ImageManifest.pagesFileName] == nil {
                try writePages(memory: UnsafeRawBufferPointer(start: nil, count: 0), ranges: [])
            }
            let manifest = ImageManifest(
                formatVersion: ImageManifest.currentFormatVersion, runtimeVersion: info.runtimeVersion,
                created: Date(timeIntervalSince1970: info.created.timeIntervalSince1970.rounded(.down)),
                containerIDs: info.containerIDs, compression: options.compression,
                compressionLevel: options.compression == .zstd ? options.level : nil,
                architecture: info.architecture, cpuFeatures: info.cpuFeatures, pageSize: info.pageSize,
                files: files.mapValues(ImageFileEntry.init), metadata: info.metadata)
            let bytes = try manifest.encoded()
            try writeRawFile(ImageManifest.fileName, bytes)
            if durable { try ImageDirectory.syncDirectory(temporaryDirectory) }
            try ImageDirectory.publish(temporaryDirectory, as: directory, overwrite: overwrite, durable: durable)
            phase = .committed
            releaseLock()
            return manifest
        } catch {
            abandon()
            throw error
        }
    }

    /// Removes a published image directory and everything in it (a missing one is fine).
    public static func remove(image directory: String) throws {
        guard ImageDirectory.fileType(directory) != nil else { return }
        try ImageDirectory.removeTree(directory)
    }

    /// Removes the temporary directory; the writer cannot be used afterwards.
    public func abandon() {
        guard phase == .writing else { return }
        phase = .abandoned
        try? ImageDirectory.removeTree(temporaryDirectory)
        releaseLock()
    }

    private func writeFile(_ name: String, _ body: (Int32, String) throws -> FramedFileSummary) throws -> FramedFileSummary {
        guard phase == .writing else { throw ImageError.misuse("write after commit or after a failure") }
        guard files[name] == nil else { throw ImageError.misuse("\(name) written twice") }
        do {
            let path = temporaryDirectory + "/" + name
            let file = try ImageFile.create(path)
            let summary = try body(file.fd, path)
            if durable { try file.sync() }
            files[name] = summary
            return summary
        } catch {
            abandon()
            throw error
        }
    }

    private func writeRawFile(_ name: String, _ bytes: [UInt8]) throws {
        let path = temporaryDirectory + "/" + name
        let file = try ImageFile.create(path)
        try bytes.withUnsafeBytes { raw in try writeAll(fd: file.fd, path: path, raw) }
        if durable { try file.sync() }
    }
}

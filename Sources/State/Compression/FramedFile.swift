/// Totals for one framed file, as written or as found by walking its headers.
public struct FramedFileSummary: Sendable, Equatable, Codable {
    /// Bytes on disk, headers included.
    public var size: UInt64
    /// `h64:` checksum of the file's header, frame headers and trailer.
    public var digest: String
    public var frames: Int
    /// Bytes of frame data before compression (for pages: bitmaps plus non-zero pages).
    public var uncompressedBytes: UInt64
    /// Bytes of frame data after compression.
    public var storedBytes: UInt64
    /// For pages: bytes of memory covered by frames, zero pages included;
    /// for state: equal to `uncompressedBytes`.
    public var spanBytes: UInt64
    /// For pages: where the last frame's memory range ends, the least size a
    /// destination needs; for state: the stream's length.
    public var endOffset: UInt64
    /// How many frames each codec stored (incompressible frames are stored with `none`).
    public var framesByCodec: [String: Int]

    /// `uncompressedBytes / storedBytes`, 1 for an empty file.
    public var compressionRatio: Double {
        storedBytes == 0 ? 1 : Double(uncompressedBytes) / Double(storedBytes)
    }
}

/// Settings for writing frames.
public struct FrameOptions: Sendable, Equatable {
    public var compression: Compression
    /// zstd level, clamped to `Compression.zstdLevels`.
    public var level: Int
    /// Uncompressed bytes per frame (state) or bytes of memory per frame (pages).
    public var chunkSize: Int
    /// Worker threads; 0 compresses on the calling thread.
    public var workers: Int

    public init(compression: Compression = .lz4, level: Int = 1, chunkSize: Int = 1 << 20,
                workers: Int? = nil) {
        self.compression = compression
        self.level = level
        self.chunkSize = chunkSize
        self.workers = workers ?? availableProcessors()
    }

    func validated() throws -> FrameOptions {
        guard chunkSize >= 4096, chunkSize <= FrameFormat.maxPayload, chunkSize % 4096 == 0 else {
            throw ImageError.invalidArgument("chunk size \(chunkSize) must be a multiple of 4096 in 4096...\(FrameFormat.maxPayload)")
        }
        guard workers >= 0, workers <= 1024 else { throw ImageError.invalidArgument("worker count \(workers) out of range") }
        var copy = self
        copy.level = min(max(level, Compression.zstdLevels.lowerBound), Compression.zstdLevels.upperBound)
        return copy
    }

    /// Jobs in flight: enough to keep every worker busy while the owner does I/O.
    var window: Int { Self.window(workers: workers) }

    static func window(workers: Int) -> Int { max(2 * workers + 2, 2) }
}

/// Compresses `raw` into `out` as one frame (header, then stored data).
/// Data that does not shrink is stored with `none`, so random pages cost a
/// copy rather than a slower decompression. When `rawInPlace`, `raw` already
/// sits right after the header in `out`. Only the stored data is hashed
/// (format version 2): for `none` that is the uncompressed data too.
func sealFrame(raw: UnsafeRawBufferPointer, rawInPlace: Bool, into out: ByteBuffer,
               options: FrameOptions, offset: UInt64, span: Int, flags: FrameFlags = [],
               context: CodecContext) throws -> FrameHeader {
    let headerSize = FrameFormat.frameHeaderSize
    var codec = options.compression
    var storedLength = raw.count
    if codec != .none && !rawInPlace {
        let capacity = out.capacity - headerSize
        storedLength = try codec.compress(raw, into: out.mutableSlice(headerSize..<headerSize + capacity),
                                          level: options.level, context: context)
    }
    if codec == .none || storedLength >= raw.count {
        codec = .none
        storedLength = raw.count
        if !rawInPlace, let source = raw.baseAddress, raw.count > 0 {
            (out.base + headerSize).copyMemory(from: source, byteCount: raw.count)
        }
    }
    let storedChecksum = Checksum.of(out.slice(headerSize..<headerSize + storedLength))
    let header = FrameHeader(codec: codec, flags: flags, offset: offset, span: UInt32(span),
                             rawLength: UInt32(raw.count), storedLength: UInt32(storedLength),
                             rawChecksum: codec == .none ? storedChecksum : 0,
                             storedChecksum: storedChecksum)
    header.encode(into: out.mutableSlice(0..<headerSize))
    out.count = headerSize + storedLength
    return header
}

/// The capacity a frame buffer needs for `rawLength` bytes under `options`.
func frameCapacity(rawLength: Int, options: FrameOptions) -> Int {
    FrameFormat.frameHeaderSize + max(options.compression.maxCompressedSize(rawLength), rawLength)
}

/// Appends sealed frames to a file in order and writes the trailer; tracks
/// the totals and digest that end up in the manifest.
///
/// Every `writebackStep` bytes it asks the kernel to start writing the
/// appended data to disk, so the disk works while workers compress and the
/// caller's final fsync waits only for the tail instead of the whole file.
final class FramedFileSink {
    let fd: Int32
    let path: String
    private var sequence: FrameSequence
    private(set) var written: UInt64
    /// Where the data not yet handed to writeback starts.
    private var writebackStart: UInt64 = 0

    static let writebackStep: UInt64 = 16 << 20

    init(fd: Int32, path: String, header: FileHeader) throws {
        self.fd = fd
        self.path = path
        let bytes = header.encoded()
        sequence = bytes.withUnsafeBytes { FrameSequence(path: path, header: header, headerBytes: $0) }
        try bytes.withUnsafeBytes { (raw) in try writeAll(fd: fd, path: path, raw) }
        written = UInt64(bytes.count)
    }

    /// Writes one sealed frame (header plus stored data, as `sealFrame` left it).
    func append(_ header: FrameHeader, frame: ByteBuffer) throws {
        try sequence.accept(header, bytes: frame.slice(0..<FrameFormat.frameHeaderSize), at: written)
        try writeAll(fd: fd, path: path, frame.bytes)
        written += UInt64(frame.count)
        if written - writebackStart >= Self.writebackStep {
            startWriteback(fd: fd, from: writebackStart, to: written)
            writebackStart = written
        }
    }

    func finish() throws -> FramedFileSummary {
        let trailer = Trailer(frameCount: UInt64(sequence.frameCount), totalSpan: sequence.totalSpan,
                              totalRaw: sequence.totalRaw, totalStored: sequence.totalStored,
                              headersChecksum: sequence.headersChecksumValue)
        var bytes = [UInt8](repeating: 0, count: FrameFormat.trailerSize)
        bytes.withUnsafeMutableBytes { trailer.encode(into: $0) }
        let position = written
        let digest = try bytes.withUnsafeBytes { (raw) -> UInt64 in
            try sequence.finish(trailer, bytes: raw, at: position)
        }
        try bytes.withUnsafeBytes { (raw) in try writeAll(fd: fd, path: path, raw) }
        written += UInt64(bytes.count)
        return sequence.summary(size: written, digest: digest)
    }
}

extension FrameSequence {
    func summary(size: UInt64, digest: UInt64) -> FramedFileSummary {
        var byCodec: [String: Int] = [:]
        for (codec, count) in codecCounts { byCodec[codec.rawValue] = count }
        return FramedFileSummary(size: size, digest: Checksum.digestString(digest), frames: frameCount,
                                 uncompressedBytes: totalRaw, storedBytes: totalStored, spanBytes: totalSpan, endOffset: nextOffset,
                                 framesByCodec: byCodec)
    }
}

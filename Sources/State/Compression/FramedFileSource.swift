#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads a framed file front to back: the file header, then each frame's
/// header (checked on its own and against the frames before it), then the
/// trailer, which must end the file. Never trusts a length before checking it
/// against the file's size and the format's limits.
final class FramedFileSource {
    let fd: Int32
    let path: String
    let size: UInt64
    let header: FileHeader
    private(set) var sequence: FrameSequence
    /// Where the next frame header starts.
    private(set) var position: UInt64
    /// Set once the trailer has been read and checked.
    private(set) var digest: UInt64?

    init(fd: Int32, path: String, kind: FrameKind) throws {
        self.fd = fd
        self.path = path
        size = try regularFileSize(fd: fd, path: path)
        let minimum = UInt64(FrameFormat.fileHeaderSize + FrameFormat.trailerSize)
        guard size >= minimum else {
            throw ImageError.corruptFile(path: path, offset: size, reason: "file is \(size) bytes, shorter than an empty framed file (\(minimum))")
        }
        var bytes = [UInt8](repeating: 0, count: FrameFormat.fileHeaderSize)
        let complete = try bytes.withUnsafeMutableBytes { (raw) -> Bool in
            try readExactly(fd: fd, path: path, at: 0, into: raw)
        }
        guard complete else { throw ImageError.corruptFile(path: path, offset: 0, reason: "file is shorter than its header") }
        let header = try bytes.withUnsafeBytes { (raw) -> FileHeader in
            try FileHeader.decode(raw, path: path, expecting: kind)
        }
        self.header = header
        sequence = bytes.withUnsafeBytes { FrameSequence(path: path, header: header, headerBytes: $0) }
        position = UInt64(FrameFormat.fileHeaderSize)
    }

    /// The next frame's header and where its stored data starts, or nil after
    /// the trailer.
    func nextFrame() throws -> (header: FrameHeader, dataOffset: UInt64, index: Int)? {
        guard digest == nil else { return nil }
        let start = position
        let index = sequence.frameCount
        let recordSize = UInt64(FrameFormat.frameHeaderSize)
        guard size - start >= recordSize else {
            throw ImageError.corruptFile(path: path, offset: start, reason: "file ends inside frame \(index)'s header (truncated)")
        }
        var bytes = [UInt8](repeating: 0, count: FrameFormat.frameHeaderSize)
        let complete = try bytes.withUnsafeMutableBytes { (raw) -> Bool in
            try readExactly(fd: fd, path: path, at: start, into: raw)
        }
        guard complete else {
            throw ImageError.corruptFile(path: path, offset: start, reason: "file ends inside frame \(index)'s header (truncated)")
        }
        let record = try bytes.withUnsafeBytes { (raw) -> FrameRecord in
            try FrameRecord.decode(raw, path: path, frame: index, at: start, version: header.version)
        }
        switch record {
        case .trailer(let trailer):
            guard start + recordSize == size else {
                throw ImageError.corruptFile(path: path, offset: start + recordSize,
                                   reason: "\(size - start - recordSize) unexpected bytes after the trailer")
            }
            digest = try bytes.withUnsafeBytes { (raw) -> UInt64 in
                try sequence.finish(trailer, bytes: raw, at: start)
            }
            position = size
            return nil
        case .frame(let header):
            let stored = UInt64(header.storedLength)
            guard size - start - recordSize >= stored + UInt64(FrameFormat.trailerSize) else {
                throw ImageError.corruptFrame(path: path, frame: index, offset: start,
                                    reason: "\(stored) bytes of data run past the end of the file (truncated?)")
            }
            try bytes.withUnsafeBytes { (raw) in
                try sequence.accept(header, bytes: raw, at: start)
            }
            position = start + recordSize + stored
            return (header, start + recordSize, index)
        }
    }

    /// Reads frame data at `offset` into `buffer` (sized to the stored length).
    func readStored(at offset: UInt64, into buffer: ByteBuffer, length: Int, frame: Int) throws {
        let complete = try readExactly(fd: fd, path: path, at: offset, into: buffer.mutableSlice(0..<length))
        guard complete else {
            throw ImageError.corruptFrame(path: path, frame: frame, offset: offset - UInt64(FrameFormat.frameHeaderSize),
                                reason: "file ends inside the frame's data (truncated)")
        }
        buffer.count = length
    }

    /// Walks every header to the trailer without reading data; returns totals
    /// and digest, and where each frame is (for a reader that loads frames
    /// in its own order, as a restore's background load does).
    func scan() throws -> (summary: FramedFileSummary, frames: [FrameLocation]) {
        var frames: [FrameLocation] = []
        while let (header, dataOffset, index) = try nextFrame() {
            frames.append(FrameLocation(header: header, index: index,
                                        headerOffset: dataOffset - UInt64(FrameFormat.frameHeaderSize)))
        }
        return (sequence.summary(size: size, digest: digest ?? 0), frames)
    }
}

/// A frame's checked header and where it lies in its file.
struct FrameLocation: Sendable {
    let header: FrameHeader
    let index: Int
    let headerOffset: UInt64
    var dataOffset: UInt64 { headerOffset + UInt64(FrameFormat.frameHeaderSize) }
}

/// A frame read from disk, on its way to a worker.
struct StoredFrame: @unchecked Sendable {
    let header: FrameHeader
    let index: Int
    let headerOffset: UInt64
    let stored: ByteBuffer
}

/// A frame checked and decompressed by a worker, on its way back to the owner.
struct DecodedFrame: @unchecked Sendable {
    let header: FrameHeader
    let index: Int
    let raw: ByteBuffer
    let stored: ByteBuffer
}

/// Reads every frame of `source` and decodes it on `workers` threads, with a
/// bounded window of frames in flight. In a worker, each frame's stored and
/// uncompressed checksums are checked and `transform` sees the data; then
/// `consume` sees it on the calling thread, in file order. Only then is the
/// trailer checked, so a caller must treat its output as valid only when this
/// returns without throwing.
func decodeFrames(from source: FramedFileSource, workers: Int, pool: BufferPool,
                  transform: @escaping (FrameHeader, Int, UInt64, UnsafeRawBufferPointer) throws -> Void,
                  consume: (FrameHeader, UnsafeRawBufferPointer) throws -> Void) throws {
    let path = source.path
    let queue = OrderedWorkQueue<StoredFrame, DecodedFrame>(workers: workers, window: FrameOptions.window(workers: workers)) {
        job, context in
        try decodeFrame(job, path: path, pool: pool, context: context, transform: transform)
    }
    defer { queue.shutdown() }
    func drainOne() throws {
        let decoded = try queue.next()
        try consume(decoded.header, decoded.raw.bytes)
        if decoded.raw !== decoded.stored { pool.give(decoded.raw) }
        pool.give(decoded.stored)
    }
    while let (header, dataOffset, index) = try source.nextFrame() {
        while queue.isFull { try drainOne() }
        let length = Int(header.storedLength)
        let stored = pool.take(capacity: length)
        try source.readStored(at: dataOffset, into: stored, length: length, frame: index)
        queue.submit(StoredFrame(header: header, index: index,
                                 headerOffset: dataOffset - UInt64(FrameFormat.frameHeaderSize), stored: stored))
    }
    while queue.inFlight > 0 { try drainOne() }
}

/// Checks one frame and decompresses it into a pool buffer for `transform`,
/// or, given `destination` (exactly its uncompressed length), straight into
/// the data's final place (a restore writing pages into the MemoryFile),
/// saving a copy; `transform` is then not called, the data being placed.
func decodeFrame(_ job: StoredFrame, path: String, pool: BufferPool, context: CodecContext,
                 into destination: UnsafeMutableRawBufferPointer? = nil,
                 transform: (FrameHeader, Int, UInt64, UnsafeRawBufferPointer) throws -> Void) throws -> DecodedFrame {
    func corrupt(_ reason: String) -> ImageError {
        .corruptFrame(path: path, frame: job.index, offset: job.headerOffset, reason: reason)
    }
    let header = job.header
    guard Checksum.of(job.stored.bytes) == header.storedChecksum else {
        throw corrupt("stored data checksum mismatch")
    }
    var raw = job.stored
    if header.codec == .none {
        guard !header.checksRaw || header.rawChecksum == header.storedChecksum else {
            throw corrupt("uncompressed data checksum mismatch")
        }
    } else if let destination {
        guard destination.count == Int(header.rawLength) else {
            throw corrupt("uncompressed length \(header.rawLength) does not fit its \(destination.count)-byte place")
        }
        do {
            try header.codec.decompress(job.stored.bytes, into: destination, context: context)
        } catch {
            throw corrupt((error as? CodecFailure)?.reason ?? "\(error)")
        }
        if header.checksRaw {
            guard Checksum.of(UnsafeRawBufferPointer(destination)) == header.rawChecksum else {
                throw corrupt("uncompressed data checksum mismatch")
            }
        }
        return DecodedFrame(header: header, index: job.index, raw: job.stored, stored: job.stored)
    } else {
        raw = pool.take(capacity: Int(header.rawLength))
        do {
            try header.codec.decompress(job.stored.bytes, into: raw.mutableSlice(0..<Int(header.rawLength)),
                                        context: context)
        } catch {
            pool.give(raw)
            throw corrupt((error as? CodecFailure)?.reason ?? "\(error)")
        }
        raw.count = Int(header.rawLength)
        if header.checksRaw {
            guard Checksum.of(raw.bytes) == header.rawChecksum else {
                pool.give(raw)
                throw corrupt("uncompressed data checksum mismatch")
            }
        }
    }
    try transform(header, job.index, job.headerOffset, raw.bytes)
    return DecodedFrame(header: header, index: job.index, raw: raw, stored: job.stored)
}

/// A streaming writer of a framed byte stream (`state.img`) over a file
/// descriptor: bytes are cut into `chunkSize` frames that worker threads
/// compress while the caller keeps writing, with a bounded number of frames in
/// flight. Call `finish` to write the trailer; the caller owns (and syncs,
/// and closes) the descriptor.
public final class FrameWriter {
    private let options: FrameOptions
    private let sink: FramedFileSink
    private let pool: BufferPool
    private let queue: OrderedWorkQueue<StateChunk, SealedFrame>
    private var chunk: ByteBuffer
    private var offset: UInt64 = 0
    private var finished = false
    private var failed = false

    public init(fd: Int32, path: String, options: FrameOptions = FrameOptions()) throws {
        let options = try options.validated()
        self.options = options
        pool = BufferPool(window: options.window)
        sink = try FramedFileSink(fd: fd, path: path, header: FileHeader(kind: .state, pageSize: 0))
        let pool = self.pool
        queue = OrderedWorkQueue(workers: options.workers, window: options.window) { job, context in
            defer { pool.give(job.raw) }
            let out = pool.take(capacity: frameCapacity(rawLength: job.raw.count, options: options))
            do {
                let header = try sealFrame(raw: job.raw.bytes, rawInPlace: false, into: out, options: options,
                                           offset: job.offset, span: job.raw.count, context: context)
                return SealedFrame(header: header, frame: out)
            } catch {
                throw ImageError.invalidArgument("compressing \(path) at stream offset \(job.offset): \(error)")
            }
        }
        chunk = pool.take(capacity: options.chunkSize)
    }

    deinit {
        queue.shutdown()
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) in try write(raw) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished, !failed else { throw ImageError.misuse("write after finish or after an error") }
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let take = min(options.chunkSize - chunk.count, bytes.count - done)
            (chunk.base + chunk.count).copyMemory(from: base + done, byteCount: take)
            chunk.count += take
            done += take
            if chunk.count == options.chunkSize { try submitChunk() }
        }
    }

    /// Flushes the last frame and writes the trailer; returns the file's totals.
    public func finish() throws -> FramedFileSummary {
        guard !finished, !failed else { throw ImageError.misuse("finish called twice or after an error") }
        finished = true
        do {
            if chunk.count > 0 { try submitChunk() }
            while queue.inFlight > 0 { try drainOne() }
            queue.shutdown()
            return try sink.finish()
        } catch {
            failed = true
            queue.shutdown()
            throw error
        }
    }

    private func submitChunk() throws {
        do {
            while queue.isFull { try drainOne() }
        } catch {
            failed = true
            throw error
        }
        let job = StateChunk(offset: offset, raw: chunk)
        offset += UInt64(chunk.count)
        queue.submit(job)
        chunk = pool.take(capacity: options.chunkSize)
    }

    private func drainOne() throws {
        let sealed: SealedFrame
        sealed = try queue.next()
        try sink.append(sealed.header, frame: sealed.frame)
        pool.give(sealed.frame)
    }
}

/// Uncompressed bytes for one state frame, handed to a worker.
struct StateChunk: @unchecked Sendable {
    let offset: UInt64
    let raw: ByteBuffer
}

/// A frame ready to append: header plus stored data in `frame`.
struct SealedFrame: @unchecked Sendable {
    let header: FrameHeader
    let frame: ByteBuffer
}

/// A streaming reader of a framed byte stream (`state.img`): frames are read
/// one at a time and decompressed on worker threads, a bounded number in
/// flight, so the file is never held in memory whole. The caller owns the
/// descriptor.
public final class FrameReader {
    private let source: FramedFileSource
    private let workers: Int

    public init(fd: Int32, path: String, workers: Int? = nil) throws {
        source = try FramedFileSource(fd: fd, path: path, kind: .state)
        self.workers = max(workers ?? availableProcessors(), 0)
    }

    /// Calls `body` with each frame's bytes in order. Every frame is checked
    /// before `body` sees it; the trailer (which proves no frame is missing at
    /// the end) is checked last, so treat the stream as complete only when
    /// this returns.
    public func forEachChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard source.digest == nil, source.position == UInt64(FrameFormat.fileHeaderSize) else {
            throw ImageError.misuse("a FrameReader reads its stream once")
        }
        let pool = BufferPool(window: FrameOptions.window(workers: workers))
        try decodeFrames(from: source, workers: workers, pool: pool,
                         transform: { _, _, _, _ in },
                         consume: { _, raw in try body(raw) })
    }

    /// The whole stream. Memory grows only as frames decode and check out, so a
    /// header that lies about lengths cannot make this allocate more than the
    /// file justifies.
    public func readAll() throws -> [UInt8] {
        var result: [UInt8] = []
        try forEachChunk { chunk in result.append(contentsOf: chunk) }
        return result
    }

    /// The file's totals; valid after the stream has been read to the end.
    public var summary: FramedFileSummary? {
        source.digest.map { source.sequence.summary(size: source.size, digest: $0) }
    }
}

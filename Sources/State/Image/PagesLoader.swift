#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CShim
import Synchronization

/// Fills a restored MemoryFile from `pages.img` while the restored program
/// already runs, as gVisor's asynchronous page loading does: a gibibyte of
/// memory takes longer to decompress and to fault into a fresh memfd than the
/// rest of a restore together, and a program rarely needs most of it at once.
///
/// Everything that can be wrong with the file is found before the program
/// runs: the ImageReader walked every header to the trailer and checked the
/// digest the manifest records when it opened the image, and `init` checks
/// every frame's stored checksum. Then `start`
/// loads frames on worker threads in file order, and a thread that needs a
/// range first (`ensureLoaded`: the Sentry before it touches or maps memory)
/// loads the frames covering it itself or waits for the worker already on
/// them. A frame that still fails (a hostile image whose checksums match
/// garbage) fails every later access to its range.
///
/// `@unchecked Sendable`: `frameStates`, `loadedCount`, `nextPending`,
/// `failures`, `stopping`, `threads` and `fd` are guarded by `changed`'s lock
/// (`fd` is read unlocked only while a frame is loading, so before `finish`);
/// `complete` is atomic; the rest is immutable after `init`. Workers write
/// disjoint frames into the destination, which the owner keeps mapped until
/// `stop()` returns.
public final class PagesLoader: @unchecked Sendable {
    private enum FrameState: UInt8 { case pending, loading, loaded, failed }

    public let path: String
    /// Closed once every frame is in place: the loader lives as long as the
    /// MemoryFile, the image's file and buffers need not.
    private var fd: Int32
    private let pageSize: Int
    private let target: SharedMemory
    private let limit: UInt64
    /// Sorted by memory offset, never overlapping (FrameSequence checked it).
    private let frames: [FrameLocation]
    private let pool: BufferPool
    private let started = monotonicNanoseconds()

    private let changed = HostCondition()
    private var frameStates: [FrameState]
    private var loadedCount = 0
    private var nextPending = 0
    /// Why each failed frame failed, by index.
    private var failures: [Int: ImageError] = [:]
    private var stopping = false
    private var threads: [pthread_t] = []
    private let complete = Atomic<Bool>(false)
    /// Called once, on the thread that loads the last frame, with the
    /// nanoseconds since `init` began (or the first failure).
    private let onFinish: @Sendable (Result<Int64, ImageError>) -> Void

    /// Takes the pages file open on `fd` (which the loader now owns) and its
    /// `frames` as the header walk found them (in memory order, never
    /// overlapping: FrameSequence checked), and checks that every frame fits
    /// a destination of `memory.count` bytes and that its data checks out.
    init(fd: Int32, path: String, frames: [FrameLocation], pageSize: Int, memory: UnsafeMutableRawBufferPointer,
         workers: Int, onFinish: @escaping @Sendable (Result<Int64, ImageError>) -> Void) throws {
        let limit = UInt64(memory.count)
        let pool = BufferPool(window: FrameOptions.window(workers: workers))
        // All checks before the object exists: a failed init never runs deinit.
        do {
            for frame in frames where frame.memory.upperBound > limit {
                throw ImageError.corruptFrame(path: path, frame: frame.index, offset: frame.headerOffset,
                                              reason: "memory range \(frame.header.offset)+\(frame.header.span) lies beyond the destination's \(limit) bytes")
            }
            try Self.checkStoredData(frames, fd: fd, path: path, workers: workers, pool: pool)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.frames = frames
        self.path = path
        self.pageSize = pageSize
        self.onFinish = onFinish
        self.limit = limit
        self.pool = pool
        target = SharedMemory(base: memory.baseAddress.map { UnsafeRawPointer($0) })
        frameStates = Array(repeating: .pending, count: frames.count)
        if frames.isEmpty { finish() }
    }

    deinit {
        stop()
        if fd >= 0 { close(fd) }
    }

    /// Whether every frame is in place (no more waiting on any range).
    public var isComplete: Bool { complete.load(ordering: .acquiring) }

    /// Starts `workers` threads loading the frames in file order.
    public func start(workers: Int) {
        changed.lock()
        defer { changed.unlock() }
        guard threads.isEmpty, !stopping else { return }
        for _ in 0..<max(workers, 1) {
            guard let thread = try? HostThread.start({ [self] in workerLoop() }) else { break }
            threads.append(thread)
        }
    }

    /// Returns once every frame overlapping `range` (memory offsets) is in
    /// place, loading pending ones on this thread; throws if one failed.
    public func ensureLoaded(_ range: Range<UInt64>) throws(ImageError) {
        if isComplete || range.isEmpty { return }
        if let failure = settle(range, discarding: false) { throw failure }
    }

    /// For a range about to be freed (its pages become holes): frames lying
    /// wholly inside are dropped instead of loaded, the others are loaded,
    /// so that no load lands in the range afterwards.
    public func discard(_ range: Range<UInt64>) {
        if isComplete || range.isEmpty { return }
        _ = settle(range, discarding: true)
    }

    /// Brings every frame overlapping `range` to rest: loaded (or dropped,
    /// when `discarding` and it lies inside `range`) or failed. Returns why
    /// a frame failed when not discarding; a discard goes on past failures,
    /// since a failed frame writes nothing.
    private func settle(_ range: Range<UInt64>, discarding: Bool) -> ImageError? {
        var index = firstFrame(endingAfter: range.lowerBound)
        var context: CodecContext?
        changed.lock()
        defer { changed.unlock() }
        while index < frames.count, frames[index].memory.lowerBound < range.upperBound {
            switch frameStates[index] {
            case .loaded:
                index += 1
            case .failed:
                if !discarding {
                    return failures[index] ?? .corruptFrame(path: path, frame: frames[index].index,
                                                            offset: frames[index].headerOffset, reason: "it failed to load")
                }
                index += 1
            case .loading:
                changed.wait()
            case .pending:
                let memory = frames[index].memory
                if discarding && range.lowerBound <= memory.lowerBound && memory.upperBound <= range.upperBound {
                    settle(index, nil)
                    continue
                }
                frameStates[index] = .loading
                changed.unlock()
                let codec = context ?? CodecContext()
                context = codec
                let result = load(frames[index], context: codec)
                changed.lock()
                settle(index, result)
            }
        }
        return nil
    }

    /// Loads everything still pending on this thread too, and returns when
    /// all is in place (a checkpoint of a restored container needs it all).
    public func finishLoading() throws(ImageError) {
        try ensureLoaded(0..<UInt64.max)
    }

    /// Stops the workers after the frames they are on; frames not loaded stay
    /// pending. The owner calls this before unmapping the destination.
    public func stop() {
        changed.lock()
        stopping = true
        changed.broadcast()
        let joining = threads
        threads = []
        changed.unlock()
        for thread in joining { pthread_join(thread, nil) }
    }

    private func workerLoop() {
        // Below the restored program and the rest of the restore: they need
        // the CPU now, and what they touch they load themselves.
        setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(cshim_current_tid()), 10)
        let context = CodecContext()
        changed.lock()
        while !stopping {
            while nextPending < frames.count && frameStates[nextPending] != .pending { nextPending += 1 }
            guard nextPending < frames.count else { break }
            let index = nextPending
            frameStates[index] = .loading
            changed.unlock()
            let result = load(frames[index], context: context)
            changed.lock()
            settle(index, result)
        }
        changed.unlock()
    }

    /// Records a frame's outcome (lock held) and wakes waiters.
    private func settle(_ index: Int, _ result: ImageError?) {
        if let result {
            frameStates[index] = .failed
            if failures.isEmpty { onFinish(.failure(result)) }
            failures[index] = result
        } else {
            frameStates[index] = .loaded
            loadedCount += 1
            if loadedCount == frames.count { finish() }
        }
        changed.broadcast()
    }

    /// Every frame is settled, so no load reads the file again.
    private func finish() {
        close(fd)
        fd = -1
        pool.removeAll()
        complete.store(true, ordering: .releasing)
        onFinish(.success(monotonicNanoseconds() - started))
    }

    /// Reads, checks, decompresses and places one frame; the error if any.
    private func load(_ frame: FrameLocation, context: CodecContext) -> ImageError? {
        let length = Int(frame.header.storedLength)
        let stored = pool.take(capacity: length)
        defer { pool.give(stored) }
        do {
            guard try readExactly(fd: fd, path: path, at: frame.dataOffset,
                                  into: stored.mutableSlice(0..<length)) else {
                throw ImageError.corruptFrame(path: path, frame: frame.index, offset: frame.headerOffset,
                                              reason: "the file shrank after it was checked")
            }
            stored.count = length
            let job = StoredFrame(header: frame.header, index: frame.index, headerOffset: frame.headerOffset,
                                  stored: stored)
            let decoded = try decodeFrame(job, path: path, pool: pool, context: context,
                                          into: directPlace(for: frame.header)) {
                [path, pageSize, target, limit] header, index, offset, raw in
                try placePages(header, raw: raw, pageSize: pageSize, target: target, limit: limit,
                               corrupt: { .corruptFrame(path: path, frame: index, offset: offset, reason: $0) })
            }
            if decoded.raw !== decoded.stored { pool.give(decoded.raw) }
            return nil
        } catch let error as ImageError {
            return error
        } catch {
            return .corruptFrame(path: path, frame: frame.index, offset: frame.headerOffset, reason: "\(error)")
        }
    }

    /// Where a compressed frame with every page present decompresses
    /// straight to (its place in the destination, faulted in first); nil for
    /// the others, which go through a buffer and `placePages`.
    private func directPlace(for header: FrameHeader) -> UnsafeMutableRawBufferPointer? {
        guard header.allPagesPresent, header.codec != .none, header.rawLength == header.span,
              let base = target.base else { return nil }
        let place = UnsafeMutableRawPointer(mutating: base + Int(header.offset))
        cshim_prefault_for_write(place, Int(header.span))
        return UnsafeMutableRawBufferPointer(start: place, count: Int(header.span))
    }

    /// The first frame whose memory ends after `offset`.
    private func firstFrame(endingAfter offset: UInt64) -> Int {
        var low = 0, high = frames.count
        while low < high {
            let middle = (low + high) / 2
            if frames[middle].memory.upperBound <= offset { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Every frame's stored checksum, on `workers` threads, without decompressing.
    private static func checkStoredData(_ frames: [FrameLocation], fd: Int32, path: String, workers: Int,
                                        pool: BufferPool) throws {
        let queue = OrderedWorkQueue<FrameLocation, Void>(workers: workers, window: FrameOptions.window(workers: workers)) {
            frame, _ in
            let length = Int(frame.header.storedLength)
            let stored = pool.take(capacity: length)
            defer { pool.give(stored) }
            guard try readExactly(fd: fd, path: path, at: frame.dataOffset, into: stored.mutableSlice(0..<length)) else {
                throw ImageError.corruptFrame(path: path, frame: frame.index, offset: frame.headerOffset,
                                              reason: "file ends inside the frame's data (truncated)")
            }
            stored.count = length
            guard Checksum.of(stored.bytes) == frame.header.storedChecksum else {
                throw ImageError.corruptFrame(path: path, frame: frame.index, offset: frame.headerOffset,
                                              reason: "stored data checksum mismatch")
            }
        }
        defer { queue.shutdown() }
        for frame in frames {
            while queue.isFull { try queue.next() }
            queue.submit(frame)
        }
        while queue.inFlight > 0 { try queue.next() }
    }
}

private func monotonicNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

extension FrameLocation {
    /// The memory a pages frame covers.
    var memory: Range<UInt64> { header.offset..<header.offset + UInt64(header.span) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CShim

/// `pages.img`: the MemoryFile's used ranges as independent frames, each
/// covering up to `chunkSize` bytes of memory with its all-zero pages left
/// out (a restored MemoryFile is a fresh memfd, zero already). Frames are
/// scanned and compressed on worker threads and written in order.
///
/// `ImageWriter` and `ImageReader` are the usual way in; these are public for
/// the benchmark and for tools that stream pages elsewhere (a socket, lazily).
public enum PagesFile {
    /// Writes the pages of `ranges` (page-aligned offsets into `memory`) to `fd`.
    /// `memoryFile`, when `memory` maps a file from its start (the
    /// MemoryFile's memfd), lets the scan skip the file's holes unread.
    public static func write(fd: Int32, path: String, memory: UnsafeRawBufferPointer, ranges: [Range<UInt64>],
                      pageSize: Int, options: FrameOptions, memoryFile: Int32 = -1) throws -> FramedFileSummary {
        let options = try options.validated()
        let extents = try splitIntoExtents(ranges, memorySize: memory.count, pageSize: pageSize,
                                           span: options.chunkSize)
        let sink = try FramedFileSink(fd: fd, path: path, header: FileHeader(kind: .pages, pageSize: UInt32(pageSize)))
        let window = writeWindow(options)
        let pool = BufferPool(window: window)
        let source = SharedMemory(base: memory.baseAddress)
        let dataRuns = memoryFile >= 0 ? FileDataRuns(of: memoryFile, within: ranges) : nil
        let queue = OrderedWorkQueue<Range<UInt64>, SealedFrame?>(workers: options.workers, window: window) {
            extent, context in
            try sealPages(extent, source: source, dataRuns: dataRuns, pageSize: pageSize, options: options,
                          pool: pool, context: context, path: path)
        }
        defer { queue.shutdown() }
        func drainOne() throws {
            guard let sealed = try queue.next() else { return }
            try sink.append(sealed.header, frame: sealed.frame)
            pool.give(sealed.frame)
        }
        for extent in extents {
            while queue.isFull { try drainOne() }
            queue.submit(extent)
        }
        while queue.inFlight > 0 { try drainOne() }
        return try sink.finish()
    }

    /// Frames in flight while writing: a worker seals a frame in well under a
    /// millisecond, so the usual window runs dry whenever the thread writing
    /// the file stalls for a moment (the disk's queue is full, say) and the
    /// workers idle. A deeper one costs a megabyte of buffer per frame.
    static func writeWindow(_ options: FrameOptions) -> Int {
        max(options.window, 8 * options.workers)
    }

    /// Reads every frame of the pages file on `fd` into `memory`, decompressing
    /// on `workers` threads; pages not in the file are left untouched. With
    /// `memory` nil, only checks every frame.
    public static func read(fd: Int32, path: String, into memory: UnsafeMutableRawBufferPointer?, pageSize: Int,
                     workers: Int) throws -> FramedFileSummary {
        let source = try FramedFileSource(fd: fd, path: path, kind: .pages)
        guard Int(source.header.pageSize) == pageSize else {
            throw ImageError.corruptFile(path: path, offset: 12,
                                         reason: "page size \(source.header.pageSize) differs from the manifest's \(pageSize)")
        }
        let target = SharedMemory(base: memory?.baseAddress.map { UnsafeRawPointer($0) })
        let limit = UInt64(memory?.count ?? Int.max)
        let pool = BufferPool(window: FrameOptions.window(workers: workers))
        try decodeFrames(from: source, workers: workers, pool: pool, transform: { header, index, offset, raw in
            try placePages(header, raw: raw, pageSize: pageSize, target: target, limit: limit,
                           corrupt: { .corruptFrame(path: path, frame: index, offset: offset, reason: $0) })
        }, consume: { _, _ in })
        guard let digest = source.digest else {
            throw ImageError.corruptFile(path: path, offset: source.position, reason: "no trailer")
        }
        return source.sequence.summary(size: source.size, digest: digest)
    }

    /// Checks and sorts `ranges`, then cuts them into extents of at most `span` bytes.
    static func splitIntoExtents(_ ranges: [Range<UInt64>], memorySize: Int, pageSize: Int,
                                 span: Int) throws -> [Range<UInt64>] {
        let page = UInt64(pageSize)
        let sorted = ranges.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        var extents: [Range<UInt64>] = []
        var previousEnd: UInt64 = 0
        for range in sorted {
            guard range.lowerBound % page == 0, range.upperBound % page == 0 else {
                throw ImageError.invalidArgument("range \(range) is not page-aligned (page size \(pageSize))")
            }
            guard range.upperBound <= UInt64(memorySize) else {
                throw ImageError.invalidArgument("range \(range) lies beyond the memory's \(memorySize) bytes")
            }
            guard range.lowerBound >= previousEnd else {
                throw ImageError.invalidArgument("range \(range) overlaps another range (ending at \(previousEnd))")
            }
            previousEnd = range.upperBound
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + UInt64(span), range.upperBound)
                extents.append(start..<end)
                start = end
            }
        }
        return extents
    }
}

/// The caller's memory mapping, shared with worker threads.
///
/// `@unchecked Sendable`: workers read disjoint extents while the writer's
/// caller keeps the mapping alive and unchanged (the kernel is paused), and
/// write disjoint frames (checked not to overlap before they are queued)
/// while the reader's caller keeps the destination alive.
struct SharedMemory: @unchecked Sendable {
    let base: UnsafeRawPointer?
}

/// Where a file has data, within the ranges a checkpoint saves: found once
/// with SEEK_DATA/SEEK_HOLE (each call walks the file's pages up to its
/// answer, so asking per extent would cost a walk to the end of every dense
/// region), then looked up per extent. The pages outside are holes, read as
/// zero without touching them.
struct FileDataRuns: Sendable {
    /// Sorted, disjoint byte ranges.
    let runs: [Range<UInt64>]

    /// Nil when the file cannot say, or has no holes to speak of (as many
    /// bytes allocated as the ranges hold: the walk would cost ~10 ms per GiB
    /// for nothing); then every page is read.
    init?(of fd: Int32, within ranges: [Range<UInt64>]) {
        var info = stat()
        let wanted = ranges.reduce(UInt64(0)) { $0 + ($1.upperBound - $1.lowerBound) }
        guard fstat(fd, &info) == 0, UInt64(max(info.st_blocks, 0)) * 512 < wanted else { return nil }
        var runs: [Range<UInt64>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            var position = range.lowerBound
            while position < range.upperBound {
                let data = cshim_seek_data(fd, position, false)
                if data == -Int64(ENXIO) { break }
                guard data >= 0 else { return nil }
                if UInt64(data) >= range.upperBound { break }
                let hole = cshim_seek_data(fd, UInt64(data), true)
                guard hole > data else { return nil }
                runs.append(UInt64(data)..<min(UInt64(hole), range.upperBound))
                position = UInt64(hole)
            }
        }
        self.runs = runs
    }

    /// The data runs inside `extent` as page-index pairs (first, end) relative to its start.
    func pageRuns(in extent: Range<UInt64>, pageSize: Int) -> [Int] {
        var low = 0, high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if runs[middle].upperBound <= extent.lowerBound { low = middle + 1 } else { high = middle }
        }
        var pairs: [Int] = []
        let page = UInt64(pageSize)
        var index = low
        while index < runs.count, runs[index].lowerBound < extent.upperBound {
            let lower = max(runs[index].lowerBound, extent.lowerBound) - extent.lowerBound
            let upper = min(runs[index].upperBound, extent.upperBound) - extent.lowerBound
            pairs.append(Int(lower / page))
            pairs.append(Int((upper + page - 1) / page))
            index += 1
        }
        return pairs
    }
}

/// Scans one extent for zero pages and seals the rest as a frame; nil when
/// every page is zero. An extent without zero pages (most memory in use) is
/// compressed straight from the mapping as an `allPagesPresent` frame, with
/// no copy; otherwise its non-zero pages are gathered behind a bitmap.
private func sealPages(_ extent: Range<UInt64>, source: SharedMemory, dataRuns: FileDataRuns?, pageSize: Int,
                       options: FrameOptions, pool: BufferPool, context: CodecContext,
                       path: String) throws -> SealedFrame? {
    guard let base = source.base else { return nil }
    let memory = base + Int(extent.lowerBound)
    let span = Int(extent.upperBound - extent.lowerBound)
    let pages = span / pageSize
    let layout = PagesPayloadLayout(pages: pages, pageSize: pageSize)
    return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: layout.bitmapBytes) { bitmap in
        guard let bitmapBase = bitmap.baseAddress else { return nil }
        bitmapBase.initialize(repeating: 0, count: layout.bitmapBytes)
        let present: Int
        if let runs = dataRuns?.pageRuns(in: extent, pageSize: pageSize) {
            present = runs.withUnsafeBufferPointer { pairs in
                cshim_mark_nonzero_pages(memory, pages, pageSize, bitmapBase, pairs.baseAddress, pairs.count / 2)
            }
        } else {
            present = cshim_mark_nonzero_pages(memory, pages, pageSize, bitmapBase, nil, 0)
        }
        guard present > 0 else { return nil }
        let fullLength = layout.length(presentPages: pages)
        let out = pool.take(capacity: frameCapacity(rawLength: fullLength, options: options))
        do {
            let header: FrameHeader
            if present == pages {
                header = try sealFrame(raw: UnsafeRawBufferPointer(start: memory, count: span), rawInPlace: false,
                                       into: out, options: options, offset: extent.lowerBound, span: span,
                                       flags: .allPagesPresent, context: context)
            } else {
                let inPlace = options.compression == .none
                let scratch = inPlace ? out : pool.take(capacity: fullLength)
                defer { if !inPlace { pool.give(scratch) } }
                let payload = scratch.base + (inPlace ? FrameFormat.frameHeaderSize : 0)
                payload.copyMemory(from: bitmapBase, byteCount: layout.bitmapBytes)
                let copied = cshim_gather_marked_pages(memory, pages, pageSize, bitmapBase,
                                                       payload + layout.bitmapBytes)
                let raw = UnsafeRawBufferPointer(start: payload, count: layout.length(presentPages: copied))
                header = try sealFrame(raw: raw, rawInPlace: inPlace, into: out, options: options,
                                       offset: extent.lowerBound, span: span, context: context)
            }
            return SealedFrame(header: header, frame: out)
        } catch {
            pool.give(out)
            throw ImageError.invalidArgument("compressing \(path) at memory offset \(extent.lowerBound): \(error)")
        }
    }
}

/// Checks a decoded pages frame (bitmap agrees with the data, or an
/// `allPagesPresent` frame holds exactly its span; range inside the
/// destination) and, given a target mapping, copies its pages into place.
func placePages(_ header: FrameHeader, raw: UnsafeRawBufferPointer, pageSize: Int, target: SharedMemory,
                        limit: UInt64, corrupt: (String) -> ImageError) throws {
    let span = UInt64(header.span)
    guard header.offset <= limit, span <= limit - header.offset else {
        throw corrupt("memory range \(header.offset)+\(span) lies beyond the destination's \(limit) bytes")
    }
    if header.allPagesPresent {
        guard UInt64(raw.count) == span else {
            throw corrupt("frame with every page present holds \(raw.count) bytes for a span of \(span)")
        }
        guard let destination = target.base, let rawBase = raw.baseAddress else { return }
        cshim_place_all_pages(rawBase, raw.count, UnsafeMutableRawPointer(mutating: destination + Int(header.offset)))
        return
    }
    let pages = Int(span) / pageSize
    let layout = PagesPayloadLayout(pages: pages, pageSize: pageSize)
    guard raw.count >= layout.bitmapBytes else { throw corrupt("frame is shorter than its page bitmap") }
    let bitmap = UnsafeRawBufferPointer(rebasing: raw[0..<layout.bitmapBytes])
    var present = 0
    for byte in bitmap { present += byte.nonzeroBitCount }
    if pages % 8 != 0, let last = bitmap.last, last >> UInt8(pages % 8) != 0 {
        throw corrupt("page bitmap marks pages beyond the frame's span")
    }
    guard raw.count == layout.length(presentPages: present) else {
        throw corrupt("page bitmap marks \(present) pages but the frame holds \((raw.count - layout.bitmapBytes) / pageSize)")
    }
    guard let destination = target.base, let rawBase = raw.baseAddress else { return }
    cshim_scatter_pages(rawBase + layout.bitmapBytes, pages, pageSize,
                        rawBase.assumingMemoryBound(to: UInt8.self),
                        UnsafeMutableRawPointer(mutating: destination + Int(header.offset)))
}

import Foundation
import Testing
@testable import State

/// Framed files of version 2 (no uncompressed checksum on compressed frames,
/// pages frames that store every page with no bitmap) next to version 1,
/// which every released image uses and which must keep reading.
@Suite("Frame format versions")
struct FrameVersionTests {
    static let page = 4096

    // MARK: version 1 still reads

    @Test(arguments: Compression.allCases)
    func versionOnePagesFilesStillRead(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let memory = mixedMemory(pages: 12, seed: 40)
        let frames = (0..<3).map { bitmapFrame(memory, firstPage: $0 * 4, pages: 4) }
        let path = scratch.file("v1")
        try writeFile(path, buildFramedFile(kind: .pages, version: 1, codec: codec, frames: frames))
        let restored = TestMemory(pages: 12)
        let summary = try readPages(path, into: restored)
        #expect(restored.equals(memory))
        #expect(summary.frames == 3)
    }

    @Test func versionOneStillChecksTheUncompressedData() throws {
        let reason = try refusal(version: 1, codec: .lz4, bitmapFrame(mixedMemory(pages: 4, seed: 41), firstPage: 0, pages: 4)) {
            $0.rawChecksum ^= 1
        }
        #expect(reason?.contains("uncompressed data checksum mismatch") == true)
    }

    @Test func versionOneRefusesFrameFlags() throws {
        let reason = try refusal(version: 1, codec: .lz4, wholeFrame(allPresentMemory(pages: 4, seed: 42), firstPage: 0, pages: 4))
        #expect(reason?.contains("reserved header bytes are not zero") == true)
    }

    @Test(arguments: ["counter-v1", "tmpfs-v1"])
    func goldenVersionOneImagesStillReadAndVerify(name: String) throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../fixtures/snapshots/\(name)").standardized.path
        let reader = try ImageReader(directory: directory, workers: 2, verifyData: true)
        try reader.verify()
        #expect(try !reader.readState().isEmpty)
        let memory = TestMemory(pages: Int((reader.requiredMemorySize + 4095) / 4096))
        let summary = try reader.readPages(into: memory.mutableBytes)
        #expect(summary.frames > 0)
    }

    // MARK: version 2 as written

    @Test(arguments: Compression.allCases, [0, 2])
    func framesWithEveryPagePresentRoundTripWithoutABitmap(codec: Compression, workers: Int) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        // Pages 0..<8 all present, 8..<16 with zero pages, 16..<24 all zero.
        let memory = allPresentMemory(pages: 24, seed: 43)
        for page in [9, 10, 14] + Array(16..<24) { memory.mutableBytes[(page * 4096)..<((page + 1) * 4096)].initializeMemory(as: UInt8.self, repeating: 0) }
        let path = scratch.file("pages")
        let summary = try writePages(memory, to: path, codec: codec, workers: workers, chunkSize: 8 * 4096)
        #expect(summary.frames == 2, "the all-zero extent has no frame")
        let headers = try frameHeaders(path, kind: .pages)
        #expect(headers.map(\.allPagesPresent) == [true, false])
        #expect(headers[0].rawLength == UInt32(8 * 4096))
        #expect(headers[1].rawLength == UInt32(1 + 5 * 4096), "a 1-byte bitmap and the 5 non-zero pages")
        for header in headers where header.codec != .none {
            #expect(header.rawChecksum == 0, "version 2 stores no checksum of uncompressed data")
        }
        let restored = TestMemory(pages: 24)
        try readPages(path, into: restored, workers: workers)
        #expect(restored.equals(memory))
    }

    @Test func writerWritesTheCurrentVersion() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("pages")
        try writePages(allPresentMemory(pages: 4, seed: 44), to: path, codec: .lz4, workers: 0, chunkSize: 4 * 4096)
        let bytes = try readFile(path)
        #expect(bytes[8] == 2 && bytes[9] == 0)
        #expect(FrameFormat.version == 2)
    }

    // MARK: hostile version 2 frames

    @Test func anAllPresentFlagOnABitmapFrameIsRefused() throws {
        let reason = try refusal(version: 2, codec: .lz4, bitmapFrame(mixedMemory(pages: 8, seed: 45), firstPage: 0, pages: 8)) {
            $0.flags = .allPagesPresent
        }
        #expect(reason?.contains("differs from its span") == true)
    }

    @Test func aBitmapLessFrameWithoutTheFlagIsRefused() throws {
        let reason = try refusal(version: 2, codec: .lz4, wholeFrame(allPresentMemory(pages: 8, seed: 46), firstPage: 0, pages: 8)) {
            $0.flags = []
        }
        #expect(reason?.contains("does not fit 8 pages plus a 1-byte bitmap") == true)
    }

    @Test(arguments: [UInt8(0x02), 0x81])
    func unknownFrameFlagsAreRefused(flags: UInt8) throws {
        let reason = try refusal(version: 2, codec: .lz4, wholeFrame(allPresentMemory(pages: 4, seed: 47), firstPage: 0, pages: 4)) {
            $0.flags = FrameFlags(rawValue: flags)
        }
        #expect(reason?.contains("unknown frame flags 0x\(String(flags & 0xfe, radix: 16))") == true)
    }

    @Test func theAllPresentFlagIsRefusedInAStateFile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var random = SeededBytes(seed: 48)
        let frame = BuiltFrame(offset: 0, span: 5000, raw: random.text(5000), flags: .allPagesPresent)
        let path = scratch.file("state")
        try writeFile(path, buildFramedFile(kind: .state, version: 2, codec: .lz4, frames: [frame]))
        let error = #expect(throws: ImageError.self) {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            defer { close(fd) }
            _ = try FrameReader(fd: fd, path: path, workers: 0).readAll()
        }
        #expect(frameError(error)?.contains("meaningless in a state file") == true)
    }

    @Test func aCompressedFrameWithAnUncompressedChecksumIsRefused() throws {
        let reason = try refusal(version: 2, codec: .zstd, wholeFrame(allPresentMemory(pages: 4, seed: 49), firstPage: 0, pages: 4)) {
            $0.rawChecksum = 1
        }
        #expect(reason?.contains("uncompressed data checksum is set") == true)
    }

    @Test func placePagesChecksAnAllPresentFrameOnItsOwn() throws {
        let target = TestMemory(pages: 4)
        let header = FrameHeader(codec: .lz4, flags: .allPagesPresent, offset: 0, span: UInt32(4 * 4096),
                                 rawLength: UInt32(3 * 4096), storedLength: 100, rawChecksum: 0, storedChecksum: 0)
        let raw = [UInt8](repeating: 7, count: 3 * 4096)
        let error = #expect(throws: ImageError.self) {
            try raw.withUnsafeBytes { bytes in
                try placePages(header, raw: bytes, pageSize: 4096, target: SharedMemory(base: UnsafeRawPointer(target.pointer)),
                               limit: UInt64(target.count), corrupt: { .corruptFrame(path: "p", frame: 0, offset: 32, reason: $0) })
            }
        }
        #expect(frameError(error)?.contains("holds 12288 bytes for a span of 16384") == true)
        #expect(target.equals(TestMemory(pages: 4)), "nothing placed")
    }
}

// MARK: helpers

/// One frame for `buildFramedFile`: its uncompressed data as the format lays it out.
struct BuiltFrame {
    var offset: UInt64
    var span: Int
    var raw: [UInt8]
    var flags: FrameFlags = []
}

/// A framed file written by hand, as a writer of `version` would (or, with
/// `tweak`, as a hostile one would: the trailer still agrees with the
/// tweaked headers, so only the frame checks can catch the lie).
func buildFramedFile(kind: FrameKind, version: UInt16, codec: Compression, frames: [BuiltFrame],
                     tweak: (inout FrameHeader) -> Void = { _ in }) throws -> [UInt8] {
    var bytes = FileHeader(kind: kind, pageSize: kind == .pages ? 4096 : 0, version: version).encoded()
    var headers = StreamingChecksum()
    var totals = (span: UInt64(0), raw: UInt64(0), stored: UInt64(0))
    let context = CodecContext()
    for frame in frames {
        var stored = [UInt8](repeating: 0, count: max(codec.maxCompressedSize(frame.raw.count), frame.raw.count))
        let storedLength = try frame.raw.withUnsafeBytes { raw in
            try stored.withUnsafeMutableBytes { out in try codec.compress(raw, into: out, level: 1, context: context) }
        }
        stored = Array(stored.prefix(storedLength))
        let storedChecksum = Checksum.of(stored)
        var header = FrameHeader(codec: codec, flags: frame.flags, offset: frame.offset, span: UInt32(frame.span),
                                 rawLength: UInt32(frame.raw.count), storedLength: UInt32(storedLength),
                                 rawChecksum: version < 2 ? Checksum.of(frame.raw) : (codec == .none ? storedChecksum : 0),
                                 storedChecksum: storedChecksum, version: version)
        tweak(&header)
        var encoded = [UInt8](repeating: 0, count: FrameFormat.frameHeaderSize)
        encoded.withUnsafeMutableBytes { header.encode(into: $0) }
        encoded.withUnsafeBytes { headers.update($0) }
        bytes += encoded + stored
        totals.span += UInt64(header.span)
        totals.raw += UInt64(header.rawLength)
        totals.stored += UInt64(header.storedLength)
    }
    let trailer = Trailer(frameCount: UInt64(frames.count), totalSpan: totals.span, totalRaw: totals.raw,
                          totalStored: totals.stored, headersChecksum: headers.value)
    var encoded = [UInt8](repeating: 0, count: FrameFormat.trailerSize)
    encoded.withUnsafeMutableBytes { trailer.encode(into: $0) }
    return bytes + encoded
}

/// A version 1 style pages frame: bitmap, then the non-zero pages.
func bitmapFrame(_ memory: TestMemory, firstPage: Int, pages: Int) -> BuiltFrame {
    var bitmap = [UInt8](repeating: 0, count: (pages + 7) / 8)
    var data: [UInt8] = []
    for index in 0..<pages {
        let start = (firstPage + index) * 4096
        let page = Array(memory.bytes[start..<start + 4096])
        if page.contains(where: { $0 != 0 }) {
            bitmap[index / 8] |= UInt8(1 << (index % 8))
            data += page
        }
    }
    return BuiltFrame(offset: UInt64(firstPage * 4096), span: pages * 4096, raw: bitmap + data)
}

/// A version 2 pages frame with every page present: the span's bytes, no bitmap.
func wholeFrame(_ memory: TestMemory, firstPage: Int, pages: Int) -> BuiltFrame {
    let start = firstPage * 4096
    return BuiltFrame(offset: UInt64(start), span: pages * 4096,
                      raw: Array(memory.bytes[start..<start + pages * 4096]), flags: .allPagesPresent)
}

/// Memory with no zero page: text and random pages alternating.
func allPresentMemory(pages: Int, seed: UInt64) -> TestMemory {
    var random = SeededBytes(seed: seed)
    let memory = TestMemory(pages: pages)
    for page in 0..<pages { memory.fill(page: page, with: page % 2 == 0 ? random.text(4096) : random.bytes(4096)) }
    return memory
}

@discardableResult
func writePages(_ memory: TestMemory, to path: String, codec: Compression, workers: Int,
                chunkSize: Int) throws -> FramedFileSummary {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    try #require(fd >= 0)
    defer { close(fd) }
    return try PagesFile.write(fd: fd, path: path, memory: memory.bytes, ranges: [0..<UInt64(memory.count)],
                               pageSize: 4096, options: FrameOptions(compression: codec, chunkSize: chunkSize, workers: workers))
}

@discardableResult
func readPages(_ path: String, into memory: TestMemory, workers: Int = 0) throws -> FramedFileSummary {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    try #require(fd >= 0)
    defer { close(fd) }
    return try PagesFile.read(fd: fd, path: path, into: memory.mutableBytes, pageSize: 4096, workers: workers)
}

func frameHeaders(_ path: String, kind: FrameKind) throws -> [FrameHeader] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    try #require(fd >= 0)
    defer { close(fd) }
    let source = try FramedFileSource(fd: fd, path: path, kind: kind)
    var headers: [FrameHeader] = []
    while let (header, _, _) = try source.nextFrame() { headers.append(header) }
    return headers
}

/// Writes a pages file of one frame (as `tweak` leaves its header) and reads
/// it; the reason it was refused, which must be an error about frame 0.
func refusal(version: UInt16, codec: Compression, _ frame: BuiltFrame,
             tweak: (inout FrameHeader) -> Void = { _ in }) throws -> String? {
    let scratch = try ScratchDirectory()
    defer { scratch.remove() }
    let path = scratch.file("pages")
    try writeFile(path, buildFramedFile(kind: .pages, version: version, codec: codec, frames: [frame], tweak: tweak))
    let error = #expect(throws: ImageError.self) {
        try readPages(path, into: TestMemory(pages: (Int(frame.offset) + frame.span) / 4096))
    }
    return frameError(error)
}

/// The reason of a `.corruptFrame` error about frame 0, nil for any other outcome.
func frameError(_ error: ImageError?) -> String? {
    guard case .corruptFrame(_, 0, _, let reason)? = error else { return nil }
    return reason
}

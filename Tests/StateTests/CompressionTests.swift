import Foundation
import Testing
@testable import State

@Suite("Compression and frames")
struct CompressionTests {
    @Test func checksumIsTheSameStreamedInAnyPieces() {
        var random = SeededBytes(seed: 1)
        for length in [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 100, 1000, 4097] {
            let bytes = random.bytes(length)
            let whole = Checksum.of(bytes)
            for split in Set([0, length / 3, length / 2, max(length - 1, 0), length]) {
                var streaming = StreamingChecksum()
                bytes.withUnsafeBytes { raw in
                    streaming.update(UnsafeRawBufferPointer(rebasing: raw[0..<split]))
                    streaming.update(UnsafeRawBufferPointer(rebasing: raw[split...]))
                }
                #expect(streaming.value == whole, "length \(length) split at \(split)")
            }
        }
    }

    @Test func checksumNoticesEveryFlippedBitAndLength() {
        var random = SeededBytes(seed: 2)
        let bytes = random.bytes(300)
        let original = Checksum.of(bytes)
        var seen: Set<UInt64> = [original]
        for bit in 0..<(bytes.count * 8) {
            var copy = bytes
            copy[bit / 8] ^= UInt8(1 << (bit % 8))
            seen.insert(Checksum.of(copy))
        }
        #expect(seen.count == bytes.count * 8 + 1)
        #expect(Checksum.of(Array(bytes.prefix(299))) != original)
        #expect(Checksum.of([UInt8](repeating: 0, count: 64)) != Checksum.of([UInt8](repeating: 0, count: 65)))
    }

    static let chunk = 4096
    static let sizes = [0, 1, 100, chunk - 1, chunk, chunk + 1, 3 * chunk, 5 * chunk + 17]

    @Test(arguments: Compression.allCases, [0, 2])
    func streamRoundTripsEverySize(codec: Compression, workers: Int) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var random = SeededBytes(seed: 3)
        for size in Self.sizes {
            let input = random.text(size / 2) + random.bytes(size - size / 2)
            let path = scratch.file("stream-\(codec)-\(size)")
            let summary = try writeStream(input, to: path, codec: codec, workers: workers)
            #expect(summary.uncompressedBytes == UInt64(size))
            #expect(summary.frames == (size + Self.chunk - 1) / Self.chunk)
            #expect(try readStream(path, workers: workers) == input, "codec \(codec), size \(size)")
        }
    }

    @Test(arguments: [Compression.lz4, .zstd])
    func compressibleDataShrinksAndRandomDataIsStoredAsIs(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var random = SeededBytes(seed: 4)
        let text = random.text(64 * 1024)
        let textSummary = try writeStream(text, to: scratch.file("text"), codec: codec, workers: 2)
        #expect(textSummary.compressionRatio > 2)
        let noise = random.bytes(64 * 1024)
        let noiseSummary = try writeStream(noise, to: scratch.file("noise"), codec: codec, workers: 2)
        #expect(noiseSummary.framesByCodec["none"] == noiseSummary.frames)
        #expect(try readStream(scratch.file("noise"), workers: 2) == noise)
    }

    @Test(arguments: Compression.allCases)
    func everyBitFlipOrTruncationIsAnErrorNeverWrongData(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var random = SeededBytes(seed: 5)
        let input = random.text(3 * Self.chunk) + random.bytes(Self.chunk + 99)
        let good = scratch.file("good")
        try writeStream(input, to: good, codec: codec, workers: 0)
        let encoded = try readFile(good)
        let damaged = scratch.file("damaged")
        for round in 0..<1500 {
            var bytes = encoded
            if round % 3 == 2 {
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
            } else {
                for _ in 0..<(1 + round % 3) {
                    let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                    bytes[bit / 8] ^= UInt8(1 << (bit % 8))
                }
            }
            try writeFile(damaged, bytes)
            #expect(throws: ImageError.self, "round \(round)") { try readStream(damaged, workers: round % 2 == 0 ? 0 : 2) }
        }
    }

    @Test func lyingLengthsAreErrorsNotAllocations() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.file("small")
        try writeStream(Array(repeating: 7, count: 1000), to: path, codec: .lz4, workers: 0)
        let encoded = try readFile(path)
        let frameStart = FrameFormat.fileHeaderSize
        let lies: [(String, (inout FrameHeader) -> Void)] = [
            ("4 GiB uncompressed", { $0.rawLength = .max; $0.span = .max }),
            ("huge stored length", { $0.storedLength = 1 << 30 }),
            ("1 MiB from a few bytes of lz4", { $0.rawLength = 1 << 20; $0.span = 1 << 20 }),
            ("wrong stream offset", { $0.offset = 4096 }),
            ("codec none with a short stored length", { $0.codec = .none }),
        ]
        for (label, lie) in lies {
            var bytes = encoded
            try bytes.withUnsafeMutableBytes { raw in
                guard case .frame(var header) = try FrameRecord.decode(
                    UnsafeRawBufferPointer(rebasing: raw[frameStart..<frameStart + FrameFormat.frameHeaderSize]),
                    path: path, frame: 0, at: UInt64(frameStart), version: FrameFormat.version) else {
                    Issue.record("no frame")
                    return
                }
                lie(&header)
                header.encode(into: UnsafeMutableRawBufferPointer(rebasing: raw[frameStart..<frameStart + FrameFormat.frameHeaderSize]))
            }
            try writeFile(path, bytes)
            let error = #expect(throws: ImageError.self, "\(label)") { try readStream(path, workers: 0) }
            guard case .corruptFrame(_, 0, UInt64(frameStart), _)? = error else {
                Issue.record("\(label): expected an error naming frame 0, got \(String(describing: error))")
                continue
            }
        }
    }

    @Test func fullDiskIsAnErrorNamingThePath() throws {
        let fd = open("/dev/full", O_WRONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        let error = #expect(throws: ImageError.self) {
            let writer = try FrameWriter(fd: fd, path: "/dev/full", options: FrameOptions(compression: .lz4, workers: 0))
            try writer.write([UInt8](repeating: 1, count: 100_000))
            _ = try writer.finish()
        }
        #expect(error == .io(path: "/dev/full", operation: "write", errno: ENOSPC))
        #expect(error?.description.contains("ENOSPC") == true)
    }

    @discardableResult
    func writeStream(_ input: [UInt8], to path: String, codec: Compression, workers: Int) throws -> FramedFileSummary {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ImageError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        let writer = try FrameWriter(fd: fd, path: path, options: FrameOptions(compression: codec, level: 3,
                                                                            chunkSize: Self.chunk, workers: workers))
        var offset = 0
        while offset < input.count {
            let piece = min(1000, input.count - offset)
            try writer.write(Array(input[offset..<offset + piece]))
            offset += piece
        }
        return try writer.finish()
    }

    func readStream(_ path: String, workers: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        return try FrameReader(fd: fd, path: path, workers: workers).readAll()
    }
}

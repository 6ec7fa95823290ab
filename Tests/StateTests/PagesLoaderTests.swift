import Foundation
import Synchronization
import Testing
@testable import State

/// The restore's background page loading: what the program touches first is
/// loaded first, everything arrives exactly once, and a bad image is refused
/// before anything is loaded.
@Suite("Pages loader")
struct PagesLoaderTests {
    static let pages = 256

    /// An image in 16-page frames: mixed memory (frames with a bitmap) up to
    /// a hole at pages 100..<120, then pages with no zero among them from 128
    /// (frames decompressed straight into place).
    func writeImage(in scratch: ScratchDirectory, codec: Compression = .lz4) throws -> (String, TestMemory) {
        let memory = mixedMemory(pages: Self.pages, seed: 41)
        memory.mutableBytes[(100 * 4096)..<(120 * 4096)].initializeMemory(as: UInt8.self, repeating: 0)
        var random = SeededBytes(seed: 42)
        for page in 128..<Self.pages { memory.fill(page: page, with: random.text(4096)) }
        let image = scratch.file("img")
        let writer = try ImageWriter(directory: image, compression: codec, info: testInfo(), workers: 2,
                                     chunkSize: 16 * 4096)
        try writer.writeState([1, 2, 3])
        try writer.writePages(memory: memory.bytes,
                              ranges: [0..<UInt64(100 * 4096), UInt64(120 * 4096)..<UInt64(Self.pages * 4096)])
        try writer.commit()
        return (image, memory)
    }

    @Test(arguments: Compression.allCases)
    func backgroundLoadFillsEverything(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, expected) = try writeImage(in: scratch, codec: codec)
        let restored = TestMemory(pages: Self.pages)
        let outcome = Mutex<Result<Int64, ImageError>?>(nil)
        let reader = try ImageReader(directory: image)
        let loader = try reader.pagesLoader(into: restored.mutableBytes) { result in
            outcome.withLock { $0 = result }
        }
        #expect(Self.openDescriptors(of: image + "/pages.img") == 2, "the reader's and the loader's")
        loader.start(workers: 2)
        try loader.finishLoading()
        #expect(loader.isComplete)
        #expect(restored.equals(expected))
        #expect(outcome.withLock { (try? $0?.get()) != nil })
        #expect(Self.openDescriptors(of: image + "/pages.img") == 1, "a loader done with the image closes it")
    }

    /// How many of this process's descriptors are open on `path`.
    static func openDescriptors(of path: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == path }.count
    }

    @Test func aRangeIsInPlaceBeforeTheBackgroundGetsThere() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, expected) = try writeImage(in: scratch)
        let restored = TestMemory(pages: Self.pages)
        let loader = try ImageReader(directory: image).pagesLoader(into: restored.mutableBytes) { _ in }
        // Not started: only what is asked for is loaded, and exactly that.
        let asked = UInt64(200 * 4096)..<UInt64(201 * 4096 + 10)
        try loader.ensureLoaded(asked)
        #expect(!loader.isComplete)
        let frame = 200 * 4096..<202 * 4096
        #expect(memcmp(restored.pointer + frame.lowerBound, expected.pointer + frame.lowerBound, frame.count) == 0)
        #expect(restored.bytes[0..<4096].allSatisfy { $0 == 0 }, "frames not asked for are not loaded yet")
        try loader.ensureLoaded(UInt64(100 * 4096)..<UInt64(120 * 4096))
        try loader.finishLoading()
        #expect(restored.equals(expected))
    }

    @Test func manyThreadsAskingAtOnceEachFrameLoadsOnce() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, expected) = try writeImage(in: scratch)
        for _ in 0..<20 {
            let restored = TestMemory(pages: Self.pages)
            let loader = try ImageReader(directory: image).pagesLoader(into: restored.mutableBytes) { _ in }
            loader.start(workers: 1)
            let failures = Mutex(0)
            let threads = (0..<4).map { seed in
                Thread {
                    var random = SeededBytes(seed: UInt64(seed))
                    for _ in 0..<50 {
                        let page = UInt64.random(in: 0..<UInt64(Self.pages), using: &random)
                        do { try loader.ensureLoaded(page * 4096..<(page + 1) * 4096) } catch {
                            failures.withLock { $0 += 1 }
                        }
                    }
                }
            }
            threads.forEach { $0.start() }
            try loader.finishLoading()
            while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
            #expect(failures.withLock { $0 } == 0)
            #expect(restored.equals(expected))
        }
    }

    @Test func aDiscardDropsWholeFramesAndLoadsTheOnesItCuts() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, expected) = try writeImage(in: scratch)
        let restored = TestMemory(pages: Self.pages)
        let loader = try ImageReader(directory: image).pagesLoader(into: restored.mutableBytes) { _ in }
        // Frames are 16 pages from 0: pages 8..<40 cut frame 0..<16, hold
        // 16..<32 whole and cut 32..<48.
        loader.discard(UInt64(8 * 4096)..<UInt64(40 * 4096))
        try loader.finishLoading()
        let dropped = restored.bytes[(16 * 4096)..<(32 * 4096)]
        #expect(dropped.allSatisfy { $0 == 0 }, "a frame wholly inside the discarded range is never written")
        expected.mutableBytes[(16 * 4096)..<(32 * 4096)].initializeMemory(as: UInt8.self, repeating: 0)
        #expect(restored.equals(expected), "every other frame, including the two the range cuts, is loaded")
    }

    @Test func stoppingMidwayLeavesTheRestPendingAndLoadable() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, expected) = try writeImage(in: scratch)
        let restored = TestMemory(pages: Self.pages)
        let loader = try ImageReader(directory: image).pagesLoader(into: restored.mutableBytes) { _ in }
        loader.start(workers: 2)
        loader.stop()
        try loader.finishLoading()
        #expect(restored.equals(expected))
    }

    @Test func aDamagedFrameIsRefusedBeforeAnythingLoads() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, _) = try writeImage(in: scratch)
        let pagesPath = image + "/pages.img"
        var bytes = try readFile(pagesPath)
        bytes[bytes.count - 200] ^= 0x10  // inside the last frame's data
        try writeFile(pagesPath, bytes)
        let restored = TestMemory(pages: Self.pages)
        let reader = try ImageReader(directory: image)
        let error = #expect(throws: ImageError.self) {
            _ = try reader.pagesLoader(into: restored.mutableBytes) { _ in }
        }
        #expect(error?.description.contains("checksum") == true)
        #expect(restored.bytes.allSatisfy { $0 == 0 })
    }

    /// A hostile image can carry checksums that match data which does not
    /// decompress: the up-front checks pass, and the frame fails when it is
    /// loaded, for whoever asks for its range, without harm to the others.
    @Test func aFrameThatChecksOutButDoesNotDecompressFailsItsRangeOnly() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, expected) = try writeImage(in: scratch)
        let pagesPath = image + "/pages.img"
        let original = try ImageFile.openForReading(pagesPath)
        let source = try FramedFileSource(fd: original.fd, path: pagesPath, kind: .pages)
        let forgedPath = scratch.file("forged.img")
        let forged = try ImageFile.create(forgedPath)
        let sink = try FramedFileSink(fd: forged.fd, path: forgedPath, header: source.header)
        var victim: Range<UInt64>?
        while let (header, dataOffset, index) = try source.nextFrame() {
            let length = Int(header.storedLength)
            let frame = ByteBuffer(capacity: FrameFormat.frameHeaderSize + length)
            let data = frame.mutableSlice(FrameFormat.frameHeaderSize..<FrameFormat.frameHeaderSize + length)
            #expect(try readExactly(fd: original.fd, path: pagesPath, at: dataOffset, into: data))
            var rewritten = header
            if index == 2 {
                #expect(header.codec == .lz4)
                data.initializeMemory(as: UInt8.self, repeating: 0xff)
                rewritten.storedChecksum = Checksum.of(UnsafeRawBufferPointer(data))
                victim = header.offset..<header.offset + UInt64(header.span)
            }
            rewritten.encode(into: frame.mutableSlice(0..<FrameFormat.frameHeaderSize))
            frame.count = FrameFormat.frameHeaderSize + length
            try sink.append(rewritten, frame: frame)
        }
        let summary = try sink.finish()
        try forged.sync()
        try FileManager.default.removeItem(atPath: pagesPath)
        try FileManager.default.moveItem(atPath: forgedPath, toPath: pagesPath)
        let manifestPath = image + "/manifest.json"
        var manifest = try ImageManifest.decode(try readFile(manifestPath), path: manifestPath)
        manifest.files["pages.img"]?.digest = summary.digest
        try writeFile(manifestPath, try manifest.encoded())

        let bad = try #require(victim)
        let restored = TestMemory(pages: Self.pages)
        let outcome = Mutex<Result<Int64, ImageError>?>(nil)
        let loader = try ImageReader(directory: image).pagesLoader(into: restored.mutableBytes) { result in
            outcome.withLock { $0 = $0 ?? result }
        }
        loader.start(workers: 2)
        #expect(throws: ImageError.self) { try loader.ensureLoaded(bad.lowerBound..<bad.lowerBound + 1) }
        #expect(throws: ImageError.self) { try loader.finishLoading() }
        try loader.ensureLoaded(0..<bad.lowerBound)
        try loader.ensureLoaded(bad.upperBound..<UInt64(Self.pages * 4096))
        #expect(memcmp(restored.pointer, expected.pointer, Int(bad.lowerBound)) == 0)
        #expect(outcome.withLock { if case .failure = $0 { true } else { false } })
        #expect(!loader.isComplete)
    }

    @Test func aDestinationTooSmallIsRefused() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let (image, _) = try writeImage(in: scratch)
        let small = TestMemory(pages: Self.pages / 2)
        let error = #expect(throws: ImageError.self) {
            _ = try ImageReader(directory: image).pagesLoader(into: small.mutableBytes) { _ in }
        }
        #expect(error?.description.contains("beyond the destination") == true)
    }
}

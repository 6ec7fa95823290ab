import Foundation
import Testing
@testable import State

@Suite("Image directory")
struct ImageTests {
    static let pages = 64

    @Test(arguments: Compression.allCases)
    func imageRoundTripsStateAndPages(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var random = SeededBytes(seed: 10)
        let state = random.text(50_000) + random.bytes(20_000)
        let memory = mixedMemory(pages: Self.pages, seed: 11)
        let ranges: [Range<UInt64>] = [0..<UInt64(20 * 4096), UInt64(24 * 4096)..<UInt64(Self.pages * 4096)]
        let image = scratch.file("img")
        let writer = try ImageWriter(directory: image, compression: codec, info: testInfo(), workers: 2,
                                     chunkSize: 16 * 4096)
        try writer.writeState(state)
        try writer.writePages(memory: memory.bytes, ranges: ranges)
        let written = try writer.commit()
        #expect(written.compression == codec)

        let reader = try ImageReader(directory: image)
        #expect(reader.manifest == written)
        #expect(reader.manifest.containerIDs == ["c1"])
        #expect(reader.manifest.metadata == ["k": "v"])
        #expect(try reader.readState() == state)
        let restored = TestMemory(pages: Self.pages)
        try reader.readPages(into: restored.mutableBytes)
        let expected = mixedMemory(pages: Self.pages, seed: 11)
        expected.mutableBytes[(20 * 4096)..<(24 * 4096)].initializeMemory(as: UInt8.self, repeating: 0)
        #expect(restored.equals(expected))
        try reader.verify()
        #expect(reader.summary.description.contains("pages.img"))
    }

    @Test func zeroPagesAreLeftOutOfTheImage() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let memory = TestMemory(pages: 4096)
        var random = SeededBytes(seed: 12)
        for page in stride(from: 0, to: 4096, by: 512) { memory.fill(page: page, with: random.bytes(4096)) }
        let image = scratch.file("img")
        let writer = try ImageWriter(directory: image, compression: .none, info: testInfo())
        try writer.writeState([1, 2, 3])
        let summary = try writer.writePages(memory: memory.bytes, ranges: [0..<UInt64(memory.count)])
        try writer.commit()
        #expect(summary.spanBytes == 8 * (1 << 20))
        #expect(summary.size < 64 * 1024, "16 MiB with 8 non-zero pages")
        let restored = TestMemory(pages: 4096)
        let reader = try ImageReader(directory: image)
        #expect(reader.requiredMemorySize <= UInt64(memory.count))
        try reader.readPages(into: restored.mutableBytes)
        #expect(restored.equals(memory))
    }

    /// A checkpoint reads the memory file through a shared mapping, where
    /// reading a hole allocates a page: holes are found with SEEK_DATA and
    /// never read, so a sparse memory stays sparse (and is saved right).
    @Test(arguments: [Compression.lz4, .none])
    func holesOfTheMemoryFileAreSkippedWithoutAllocatingThem(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let size = 64 << 20
        let backing = "/dev/shm/runsc-image-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(backing, O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        unlink(backing)
        defer { close(fd) }
        #expect(ftruncate(fd, off_t(size)) == 0)
        let mapping = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, size) }
        var random = SeededBytes(seed: 13)
        let written = [3, 4, 5, 700, 4095, 9000, 16383]
        for page in written {
            random.bytes(4096).withUnsafeBytes { (mapping + page * 4096).copyMemory(from: $0.baseAddress!, byteCount: 4096) }
        }
        func allocatedBytes() -> Int {
            var info = stat()
            return fstat(fd, &info) == 0 ? Int(info.st_blocks) * 512 : -1
        }
        #expect(allocatedBytes() == written.count * 4096)

        let image = scratch.file("img")
        let writer = try ImageWriter(directory: image, compression: codec, info: testInfo(), workers: 2)
        try writer.writeState([1])
        let memory = UnsafeRawBufferPointer(start: mapping, count: size)
        try writer.writePages(memory: memory, ranges: [0..<UInt64(size)], file: fd)
        try writer.commit()
        #expect(allocatedBytes() == written.count * 4096, "the scan allocated the holes it read")

        let restored = TestMemory(pages: size / 4096)
        try ImageReader(directory: image).readPages(into: restored.mutableBytes)
        #expect(memcmp(restored.pointer, mapping, size) == 0)
    }

    @Test func chunkSizedAndEmptyRangesRoundTrip() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let memory = mixedMemory(pages: 48, seed: 13)
        for (index, ranges) in [[], [0..<UInt64(16 * 4096)], [0..<UInt64(48 * 4096)], [UInt64(4096)..<UInt64(4096)]].enumerated() {
            let image = scratch.file("img\(index)")
            let writer = try ImageWriter(directory: image, info: testInfo(), workers: 0, chunkSize: 16 * 4096)
            try writer.writeState([])
            try writer.writePages(memory: memory.bytes, ranges: ranges)
            try writer.commit()
            let reader = try ImageReader(directory: image, workers: 0)
            #expect(try reader.readState() == [])
            let restored = TestMemory(pages: 48)
            try reader.readPages(into: restored.mutableBytes)
            for range in ranges {
                let start = Int(range.lowerBound), end = Int(range.upperBound)
                #expect(memcmp(restored.pointer + start, memory.pointer + start, end - start) == 0)
            }
        }
    }

    @Test func badRangesAreRefusedAndLeaveNoImage() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let memory = TestMemory(pages: 8)
        let bad: [[Range<UInt64>]] = [[0..<100], [0..<UInt64(16 * 4096)], [0..<8192, 4096..<12288]]
        for ranges in bad {
            let image = scratch.file("img")
            let writer = try ImageWriter(directory: image, info: testInfo())
            try writer.writeState([1])
            #expect(throws: ImageError.self) { try writer.writePages(memory: memory.bytes, ranges: ranges) }
            #expect(throws: ImageError.self) { try writer.commit() }
            #expect(!FileManager.default.fileExists(atPath: image))
            #expect(!FileManager.default.fileExists(atPath: writer.temporaryDirectory))
        }
    }

    @Test func destinationTooSmallIsAnErrorNamingTheFrame() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let memory = mixedMemory(pages: 32, seed: 14)
        let image = scratch.file("img")
        let writer = try ImageWriter(directory: image, info: testInfo(), chunkSize: 8 * 4096)
        try writer.writeState([1])
        try writer.writePages(memory: memory.bytes, ranges: [0..<UInt64(memory.count)])
        try writer.commit()
        let reader = try ImageReader(directory: image)
        #expect(reader.requiredMemorySize == UInt64(memory.count))
        let small = TestMemory(pages: 20)
        let error = #expect(throws: ImageError.self) { try reader.readPages(into: small.mutableBytes) }
        guard case .corruptFrame(let path, _, _, let reason)? = error else {
            Issue.record("unexpected \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("pages.img"))
        #expect(reason.contains("beyond the destination"))
    }

    @Test func unknownFormatVersionIsRefusedListingTheVersionsThisBuildReads() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let image = try writeSmallImage(in: scratch, codec: .lz4)
        let manifestPath = image + "/manifest.json"
        let text = String(decoding: try readFile(manifestPath), as: UTF8.self)
        try writeFile(manifestPath, Array(text.replacingOccurrences(of: "\"formatVersion\" : 2", with: "\"formatVersion\" : 99").utf8))
        let error = #expect(throws: ImageError.self) { try ImageReader(directory: image) }
        #expect(error == .unsupportedFormatVersion(path: manifestPath, found: 99, supported: [1, 2]))
        #expect(error?.description.contains("reads version(s) 1") == true)
    }

    @Test func abandonedWriterLeavesNothingBehind() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let image = scratch.file("img")
        var temporary = ""
        do {
            let writer = try ImageWriter(directory: image, info: testInfo())
            temporary = writer.temporaryDirectory
            try writer.writeState([1, 2, 3])
            #expect(FileManager.default.fileExists(atPath: temporary + "/state.img"))
            #expect(!FileManager.default.fileExists(atPath: image))
        }
        #expect(!FileManager.default.fileExists(atPath: temporary))
        #expect(!FileManager.default.fileExists(atPath: image))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func aDeadWritersTemporaryDirectoryIsCleanedUp() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let stale = scratch.file("img.tmp-999999999-abc")
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: false)
        try writeFile(stale + "/state.img", [1, 2, 3])
        _ = try writeSmallImage(in: scratch, codec: .none)
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    @Test func existingImageIsKeptUnlessOverwriteIsAsked() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let image = try writeSmallImage(in: scratch, codec: .lz4)
        #expect(throws: ImageError.imageExists(path: image)) { try ImageWriter(directory: image, info: testInfo()) }
        let writer = try ImageWriter(directory: image, compression: .zstd, info: testInfo(), overwrite: true)
        try writer.writeState([9, 9])
        try writer.commit()
        let reader = try ImageReader(directory: image)
        #expect(reader.manifest.compression == .zstd)
        #expect(try reader.readState() == [9, 9])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path) == ["img"])

        let userDirectory = scratch.file("mine")
        try FileManager.default.createDirectory(atPath: userDirectory, withIntermediateDirectories: false)
        try writeFile(userDirectory + "/notes.txt", [1])
        #expect(throws: ImageError.self) { try ImageWriter(directory: userDirectory, info: testInfo(), overwrite: true) }
        #expect(FileManager.default.fileExists(atPath: userDirectory + "/notes.txt"))
    }

    @Test func missingParentAndReadOnlyDirectoriesAreErrorsNamingThePath() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let missing = scratch.file("no/such/img")
        let error = #expect(throws: ImageError.self) { try ImageWriter(directory: missing, info: testInfo()) }
        #expect(error?.description.contains(scratch.file("no/such")) == true)
        guard geteuid() != 0 else { return }
        let locked = scratch.file("locked")
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        chmod(locked, 0o555)
        defer { chmod(locked, 0o755) }
        let lockedError = #expect(throws: ImageError.self) { try ImageWriter(directory: locked + "/img", info: testInfo()) }
        #expect(lockedError?.description.contains(locked) == true)
    }

    @Test(arguments: Compression.allCases)
    func corruptedImagesAreErrorsNeverCrashesOrWrongData(codec: Compression) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let image = try writeSmallImage(in: scratch, codec: codec)
        let names = ["state.img", "pages.img", "manifest.json"]
        let originals = try names.map { try readFile(image + "/" + $0) }
        let goodState = try ImageReader(directory: image).readState()
        let goodPages = TestMemory(pages: 16)
        try ImageReader(directory: image).readPages(into: goodPages.mutableBytes)

        var random = SeededBytes(seed: UInt64(20 + codec.code))
        let damaged = scratch.file("damaged")
        try FileManager.default.createDirectory(atPath: damaged, withIntermediateDirectories: false)
        var undetected = 0
        for round in 0..<1200 {
            let victim = round % 3
            for (index, name) in names.enumerated() {
                var bytes = originals[index]
                if index == victim {
                    if round % 4 == 3 {
                        bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
                    } else {
                        for _ in 0..<(1 + round % 2) {
                            let bit = Int.random(in: 0..<(bytes.count * 8), using: &random)
                            bytes[bit / 8] ^= UInt8(1 << (bit % 8))
                        }
                    }
                }
                try writeFile(damaged + "/" + name, bytes)
            }
            do {
                let reader = try ImageReader(directory: damaged, workers: round % 2 == 0 ? 0 : 2)
                let state = try reader.readState()
                let memory = TestMemory(pages: 16)
                try reader.readPages(into: memory.mutableBytes)
                try reader.verify()
                // Only a change the manifest's JSON absorbs (a digit of the
                // creation time, say) may pass, and then the data is intact.
                #expect(victim == 2, "round \(round): damage to \(names[victim]) went unnoticed")
                #expect(state == goodState)
                #expect(memory.equals(goodPages))
                undetected += 1
            } catch is ImageError {
            }
        }
        #expect(undetected < 100)
    }

    func writeSmallImage(in scratch: ScratchDirectory, codec: Compression) throws -> String {
        var random = SeededBytes(seed: 30)
        let memory = mixedMemory(pages: 16, seed: 31)
        let image = scratch.file("img")
        let writer = try ImageWriter(directory: image, compression: codec, info: testInfo(), workers: 0,
                                     chunkSize: 4 * 4096)
        try writer.writeState(random.text(6000) + random.bytes(3000))
        try writer.writePages(memory: memory.bytes, ranges: [0..<UInt64(memory.count)])
        try writer.commit()
        return image
    }
}

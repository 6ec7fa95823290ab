import Foundation
@testable import State

/// Seeded generator so that corruption tests replay exactly.
struct SeededBytes: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// Compressible, text-like bytes: words from a small vocabulary.
    mutating func text(_ count: Int) -> [UInt8] {
        let words = ["task", "signal", "pipe", "futex", "mmap", "the", "of", "runsc", "sentry", "kernel", "\n", " "]
        var out: [UInt8] = []
        out.reserveCapacity(count + 16)
        while out.count < count {
            out.append(contentsOf: words[Int.random(in: 0..<words.count, using: &self)].utf8)
            out.append(UInt8(ascii: " "))
        }
        return Array(out.prefix(count))
    }
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct ScratchDirectory {
    let path: String

    init(_ label: String = #function) throws {
        let base = FileManager.default.temporaryDirectory.path
        let safe = label.filter { $0.isLetter || $0.isNumber }
        path = base + "/runsc-image-tests-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Memory as a restored MemoryFile would see it: page-aligned, zero-filled.
final class TestMemory {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    init(pages: Int, pageSize: Int = 4096) {
        count = pages * pageSize
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 4096)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }

    deinit { pointer.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: pointer, count: count) }
    var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: count) }

    func fill(page: Int, with bytes: [UInt8], pageSize: Int = 4096) {
        bytes.withUnsafeBytes { source in
            (pointer + page * pageSize).copyMemory(from: source.baseAddress!, byteCount: min(bytes.count, pageSize))
        }
    }

    func equals(_ other: TestMemory) -> Bool {
        count == other.count && memcmp(pointer, other.pointer, count) == 0
    }
}

/// A mix like a real address space: zero pages, text pages, random pages.
func mixedMemory(pages: Int, seed: UInt64) -> TestMemory {
    var random = SeededBytes(seed: seed)
    let memory = TestMemory(pages: pages)
    for page in 0..<pages {
        switch page % 5 {
        case 0, 3: break
        case 1: memory.fill(page: page, with: random.text(4096))
        case 2: memory.fill(page: page, with: random.bytes(4096))
        default: memory.fill(page: page, with: random.bytes(64))
        }
    }
    return memory
}

func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func testInfo() -> ImageInfo {
    ImageInfo(runtimeVersion: "test", containerIDs: ["c1"], cpuFeatures: ["sse2"], metadata: ["k": "v"])
}

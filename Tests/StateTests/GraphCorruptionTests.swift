import Testing
@testable import State

/// A small deterministic generator, so a failing corruption case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct GraphCorruption {
    @Test func flippedBitsAndTruncationGiveErrorsNeverACrash() throws {
        let image = try StateEncoder.encode(root: makeKernel())
        let decoder = StateDecoder(registry: testRegistry())
        var random = SplitMix64(state: 0x5eed)
        var errors = 0
        for round in 0..<6000 {
            var damaged = image
            switch round % 3 {
            case 0:
                let flips = Int.random(in: 1...4, using: &random)
                for _ in 0..<flips {
                    let index = Int.random(in: 0..<damaged.count, using: &random)
                    damaged[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
                }
            case 1:
                damaged.removeLast(Int.random(in: 1..<damaged.count, using: &random))
            default:
                let index = Int.random(in: 0..<damaged.count, using: &random)
                damaged[index] = UInt8.random(in: 0...255, using: &random)
                damaged.insert(UInt8.random(in: 0...255, using: &random), at: index)
            }
            do {
                _ = try decoder.decode(damaged)
            } catch is StateError {
                errors += 1
            }
        }
        // Every truncation must fail; flips inside payload bytes may still decode.
        #expect(errors >= 2000)
    }

    @Test func hostileCountsAreRefusedWithoutAllocating() throws {
        var writer = ByteWriter()
        writer.bytes.append(contentsOf: StateFormat.magic)
        writer.appendFixed32(StateFormat.currentVersion)
        writer.appendVarint(1 << 60)
        #expect(throws: StateError.self) { try StateStream(bytes: writer.bytes) }

        var array = ByteWriter()
        array.bytes.append(contentsOf: StateFormat.magic)
        array.appendFixed32(StateFormat.currentVersion)
        array.appendVarint(0)
        array.appendVarint(UInt64(Int32.max))
        #expect(throws: StateError.self) { try StateStream(bytes: array.bytes) }
    }

    @Test func garbageIsNotAStateStream() {
        #expect(throws: StateError.self) { try StateStream(bytes: []) }
        #expect(throws: StateError.self) { try StateStream(bytes: Array("hello, world".utf8)) }
    }
}

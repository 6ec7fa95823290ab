import Glibc

/// Randomness from the host (glibc's arc4random, seeded by getrandom), for
/// AT_RANDOM, getrandom(2), IDs and address-space layout randomisation.
enum Random {
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        arc4random_buf(base, buffer.count)
    }

    static func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { fill($0) }
    }

    /// A uniformly random value below `bound` (0 when `bound` is 0).
    static func below(_ bound: UInt64) -> UInt64 {
        guard bound > 0 else { return 0 }
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value % bound
    }
}

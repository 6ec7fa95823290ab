import Glibc

/// Randomness from the host (glibc's arc4random, seeded by getrandom), for
/// AT_RANDOM, getrandom(2) and IDs.
enum Random {
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        arc4random_buf(base, buffer.count)
    }

    static func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { fill($0) }
    }
}

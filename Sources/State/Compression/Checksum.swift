import CShim

/// The 64-bit checksum of frame data and headers (CShim's `cshim_hash64`): fast
/// enough to run on every byte of a checkpoint without being the bottleneck.
public enum Checksum {
    public static func of(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        guard let base = bytes.baseAddress else { return cshim_hash64(nil, 0, seed) }
        return cshim_hash64(base, bytes.count, seed)
    }

    public static func of(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { of($0, seed: seed) }
    }

    /// The text form used in manifests, e.g. `h64:00ff…`.
    static func digestString(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return "h64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A streaming checksum, for digests over many separately written pieces.
struct StreamingChecksum {
    private var state = cshim_hash64_state()

    init(seed: UInt64 = 0) {
        cshim_hash64_reset(&state, seed)
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        cshim_hash64_update(&state, base, bytes.count)
    }

    var value: UInt64 {
        var copy = state
        return cshim_hash64_digest(&copy)
    }
}

import CLZ4
import CZstd

/// How frames of an image are compressed. `lz4` is the default because a
/// checkpoint is on the critical path of pausing a container; `zstd` trades
/// speed for a smaller image (for migration over a slow link).
public enum Compression: String, Sendable, CaseIterable, Codable {
    case none
    case lz4
    case zstd

    /// The byte stored in each frame header; part of the on-disk format.
    var code: UInt8 {
        switch self {
        case .none: 0
        case .lz4: 1
        case .zstd: 2
        }
    }

    init?(code: UInt8) {
        switch code {
        case 0: self = .none
        case 1: self = .lz4
        case 2: self = .zstd
        default: return nil
        }
    }

    /// The zstd levels the image layer offers: beyond 3 compression falls far
    /// below the disk's speed for little gain on memory pages.
    public static let zstdLevels: ClosedRange<Int> = 1...3

    /// The largest output `compress` can produce for `count` input bytes.
    public func maxCompressedSize(_ count: Int) -> Int {
        switch self {
        case .none: count
        case .lz4: Int(LZ4_compressBound(Int32(clamping: count)))
        case .zstd: ZSTD_compressBound(count)
        }
    }

    /// Compresses `input` into `output` (at least `maxCompressedSize(input.count)`
    /// bytes) and returns the compressed length. `level` applies to zstd only.
    /// Uses `context` for zstd so a worker thread reuses its tables.
    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                  level: Int, context: CodecContext) throws -> Int {
        switch self {
        case .none:
            guard output.count >= input.count else { throw CodecFailure("output buffer too small") }
            if let source = input.baseAddress, let target = output.baseAddress, input.count > 0 {
                target.copyMemory(from: source, byteCount: input.count)
            }
            return input.count
        case .lz4:
            guard input.count <= Int(LZ4_MAX_INPUT_SIZE) else { throw CodecFailure("input too large for lz4") }
            guard let source = input.baseAddress, input.count > 0 else { return 0 }
            guard let target = output.baseAddress else { throw CodecFailure("output buffer too small") }
            let written = LZ4_compress_default(source.assumingMemoryBound(to: CChar.self),
                                               target.assumingMemoryBound(to: CChar.self),
                                               Int32(input.count), Int32(clamping: output.count))
            guard written > 0 else { throw CodecFailure("lz4 compression failed") }
            return Int(written)
        case .zstd:
            let cctx = try context.compressionContext()
            let written = ZSTD_compressCCtx(cctx, output.baseAddress, output.count,
                                            input.baseAddress, input.count, Int32(level))
            if ZSTD_isError(written) != 0 {
                throw CodecFailure("zstd: " + String(cString: ZSTD_getErrorName(written)))
            }
            return written
        }
    }

    /// Decompresses `input` into exactly `output.count` bytes. Any other
    /// outcome (short output, trailing garbage, malformed input) is an error:
    /// input comes from disk and may be hostile.
    func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                    context: CodecContext) throws {
        switch self {
        case .none:
            guard input.count == output.count else {
                throw CodecFailure("stored length \(input.count) differs from uncompressed length \(output.count)")
            }
            if let source = input.baseAddress, let target = output.baseAddress, input.count > 0 {
                target.copyMemory(from: source, byteCount: input.count)
            }
        case .lz4:
            if output.count == 0 && input.count == 0 { return }
            guard let source = input.baseAddress, let target = output.baseAddress,
                  input.count <= Int(Int32.max), output.count <= Int(Int32.max) else {
                throw CodecFailure("lz4 block has impossible lengths")
            }
            let produced = LZ4_decompress_safe(source.assumingMemoryBound(to: CChar.self),
                                               target.assumingMemoryBound(to: CChar.self),
                                               Int32(input.count), Int32(output.count))
            guard produced == Int32(output.count) else {
                throw CodecFailure(produced < 0 ? "lz4 block is malformed"
                                   : "lz4 block decodes to \(produced) bytes, expected \(output.count)")
            }
        case .zstd:
            let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
            guard declared == UInt64(output.count) else {
                throw CodecFailure(declared >= ZSTD_CONTENTSIZE_ERROR_VALUE ? "zstd frame header is malformed"
                                   : "zstd frame declares \(declared) bytes, expected \(output.count)")
            }
            let dctx = try context.decompressionContext()
            let produced = ZSTD_decompressDCtx(dctx, output.baseAddress, output.count,
                                               input.baseAddress, input.count)
            if ZSTD_isError(produced) != 0 {
                throw CodecFailure("zstd: " + String(cString: ZSTD_getErrorName(produced)))
            }
            guard produced == output.count else {
                throw CodecFailure("zstd frame decodes to \(produced) bytes, expected \(output.count)")
            }
        }
    }
}

/// `ZSTD_getFrameContentSize` returns these two sentinels at the top of the range.
private let ZSTD_CONTENTSIZE_ERROR_VALUE: UInt64 = UInt64.max - 1

/// Why a codec call failed; the frame layer adds which file and frame.
struct CodecFailure: Error, CustomStringConvertible {
    var reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { reason }
}

/// Per-thread codec state: zstd contexts are expensive to create (hundreds of
/// KiB of tables), so each worker keeps one for its lifetime. Not shared
/// between threads.
final class CodecContext {
    private var cctx: OpaquePointer?
    private var dctx: OpaquePointer?

    init() {}

    deinit {
        if let cctx { ZSTD_freeCCtx(cctx) }
        if let dctx { ZSTD_freeDCtx(dctx) }
    }

    func compressionContext() throws -> OpaquePointer {
        if let cctx { return cctx }
        guard let created = ZSTD_createCCtx() else { throw CodecFailure("out of memory creating a zstd context") }
        cctx = created
        return created
    }

    func decompressionContext() throws -> OpaquePointer {
        if let dctx { return dctx }
        guard let created = ZSTD_createDCtx() else { throw CodecFailure("out of memory creating a zstd context") }
        dctx = created
        return created
    }
}

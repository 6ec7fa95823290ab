import CLZ4

/// The on-disk layout shared by `state.img` and `pages.img`: a file header,
/// independent frames (each a header plus stored data), and a trailer.
///
///     file header (32 bytes)
///       0 magic "RUNSCIMG"   8 u16 format version   10 u8 kind   11 u8 0
///      12 u32 page size (pages files; 0 otherwise)   16 u64 0   24 u64 checksum of bytes 0..<24
///     frame header (56 bytes), then `stored length` bytes of data
///       0 magic "RSFR"   4 u8 codec   5 u8 flags (version 1: 0)   6..<8 0
///       8 u64 offset (state: position in the uncompressed stream; pages: offset in the memory file)
///      16 u32 span (state: = uncompressed length; pages: bytes of memory the frame covers)
///      20 u32 uncompressed length   24 u32 stored length   28 u32 0
///      32 u64 checksum of the uncompressed data (version 2: only for codec none,
///             where it equals the next field; 0 for lz4 and zstd)
///      40 u64 checksum of the stored data
///      48 u64 checksum of bytes 0..<48
///     trailer (56 bytes), then end of file
///       0 magic "RSTR"   4 u32 0   8 u64 frame count   16 u64 total span
///      24 u64 total uncompressed   32 u64 total stored   40 u64 checksum of all frame headers
///      48 u64 checksum of bytes 0..<48
///
/// All integers are little-endian. Every frame is self-checking and
/// independent, so frames are compressed and decompressed in parallel; the
/// file digest recorded in the manifest is the checksum of the file header,
/// every frame header and the trailer: because frame headers carry their
/// data's checksums, it commits to every byte while costing one walk over
/// the headers to check.
///
/// Version 2 differs from 1 in two ways. Compressed frames carry no checksum
/// of their uncompressed data: the stored checksum already covers every byte
/// on disk and both decompressors are memory-safe and deterministic, so a
/// second hash over every byte of memory only cost time. And a pages frame
/// may carry the flag `allPagesPresent`: its data is then exactly `span`
/// bytes of pages with no bitmap, so the writer compresses straight from the
/// memory instead of gathering a copy.
enum FrameFormat {
    static let version: UInt16 = 2
    static let readableVersions: [Int] = [1, 2]
    static let fileMagic: [UInt8] = Array("RUNSCIMG".utf8)
    static let frameMagic: UInt32 = 0x5246_5352  // "RSFR"
    static let trailerMagic: UInt32 = 0x5254_5352  // "RSTR"
    static let fileHeaderSize = 32
    static let frameHeaderSize = 56
    static let trailerSize = 56

    /// No frame carries more than this much page data or state bytes, so a
    /// reader never allocates more per frame whatever a header claims.
    static let maxPayload = 16 << 20
    /// Bytes of memory one pages frame may cover (its bitmap is then at most
    /// `maxSpan / pageSize / 8` bytes).
    static let maxSpan = 256 << 20
    /// LZ4 cannot expand data by more than about 255 times; a header that
    /// claims more is lying.
    static let lz4MaxRatio = 256
}

/// What a framed file holds.
enum FrameKind: UInt8, Sendable {
    case state = 1
    case pages = 2

    var name: String {
        switch self {
        case .state: "state"
        case .pages: "pages"
        }
    }
}

/// Per-frame flags (frame header byte 5, version 2 on). A reader refuses
/// bits it does not know: they would change how the data is laid out.
struct FrameFlags: OptionSet, Equatable, Sendable {
    let rawValue: UInt8

    /// Pages frames only: every page of the span is stored, in order, with no
    /// bitmap (uncompressed length = span).
    static let allPagesPresent = FrameFlags(rawValue: 1 << 0)

    static let known: FrameFlags = [.allPagesPresent]
}

struct FileHeader: Equatable {
    var kind: FrameKind
    var pageSize: UInt32
    /// The layout version the file's frames follow (`FrameFormat.version` when writing).
    var version: UInt16 = FrameFormat.version

    func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: FrameFormat.fileHeaderSize)
        bytes.withUnsafeMutableBytes { raw in
            for (index, byte) in FrameFormat.fileMagic.enumerated() { raw[index] = byte }
            raw.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt16.self)
            raw[10] = kind.rawValue
            raw.storeBytes(of: pageSize.littleEndian, toByteOffset: 12, as: UInt32.self)
            let checksum = Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<24]))
            raw.storeBytes(of: checksum.littleEndian, toByteOffset: 24, as: UInt64.self)
        }
        return bytes
    }

    static func decode(_ raw: UnsafeRawBufferPointer, path: String,
                       expecting kind: FrameKind) throws -> FileHeader {
        guard raw.count == FrameFormat.fileHeaderSize else {
            throw ImageError.corruptFile(path: path, offset: 0, reason: "file is shorter than its header")
        }
        guard Array(raw[0..<8]) == FrameFormat.fileMagic else {
            throw ImageError.corruptFile(path: path, offset: 0, reason: "bad magic (not a runsc image file)")
        }
        let checksum = raw.loadLE(UInt64.self, at: 24)
        guard checksum == Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<24])) else {
            throw ImageError.corruptFile(path: path, offset: 0, reason: "file header checksum mismatch")
        }
        let version = Int(raw.loadLE(UInt16.self, at: 8))
        guard FrameFormat.readableVersions.contains(version) else {
            throw ImageError.unsupportedFormatVersion(path: path, found: version, supported: FrameFormat.readableVersions)
        }
        guard raw[10] == kind.rawValue else {
            let found = FrameKind(rawValue: raw[10])?.name ?? "unknown kind \(raw[10])"
            throw ImageError.corruptFile(path: path, offset: 10, reason: "holds \(found) frames, expected \(kind.name)")
        }
        guard raw[11] == 0, raw.loadLE(UInt64.self, at: 16) == 0 else {
            throw ImageError.corruptFile(path: path, offset: 11, reason: "reserved header bytes are not zero")
        }
        let pageSize = raw.loadLE(UInt32.self, at: 12)
        switch kind {
        case .state:
            guard pageSize == 0 else {
                throw ImageError.corruptFile(path: path, offset: 12, reason: "state file declares a page size")
            }
        case .pages:
            guard pageSize >= 4096, pageSize <= 65536, pageSize.nonzeroBitCount == 1 else {
                throw ImageError.corruptFile(path: path, offset: 12, reason: "page size \(pageSize) is not a power of two in 4096...65536")
            }
        }
        return FileHeader(kind: kind, pageSize: pageSize, version: UInt16(version))
    }
}

struct FrameHeader: Equatable {
    var codec: Compression
    var flags: FrameFlags = []
    var offset: UInt64
    var span: UInt32
    var rawLength: UInt32
    var storedLength: UInt32
    var rawChecksum: UInt64
    var storedChecksum: UInt64
    /// The version of the file the frame belongs to, which decides what
    /// `rawChecksum` means.
    var version: UInt16 = FrameFormat.version

    /// Whether `rawChecksum` is the checksum of the uncompressed data, to be
    /// checked after decompressing (version 1, and codec none where it is
    /// the stored checksum); version 2 compressed frames leave it 0.
    var checksRaw: Bool { version < 2 || codec == .none }

    /// Whether a pages frame stores its whole span with no bitmap.
    var allPagesPresent: Bool { flags.contains(.allPagesPresent) }

    /// Writes the 56-byte header (with its own checksum) at the start of `raw`.
    func encode(into raw: UnsafeMutableRawBufferPointer) {
        raw.storeBytes(of: FrameFormat.frameMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
        raw.storeBytes(of: UInt32(codec.code).littleEndian, toByteOffset: 4, as: UInt32.self)
        raw[5] = flags.rawValue
        raw.storeBytes(of: offset.littleEndian, toByteOffset: 8, as: UInt64.self)
        raw.storeBytes(of: span.littleEndian, toByteOffset: 16, as: UInt32.self)
        raw.storeBytes(of: rawLength.littleEndian, toByteOffset: 20, as: UInt32.self)
        raw.storeBytes(of: storedLength.littleEndian, toByteOffset: 24, as: UInt32.self)
        raw.storeBytes(of: UInt32(0), toByteOffset: 28, as: UInt32.self)
        raw.storeBytes(of: rawChecksum.littleEndian, toByteOffset: 32, as: UInt64.self)
        raw.storeBytes(of: storedChecksum.littleEndian, toByteOffset: 40, as: UInt64.self)
        let checksum = Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<48]))
        raw.storeBytes(of: checksum.littleEndian, toByteOffset: 48, as: UInt64.self)
    }
}

struct Trailer: Equatable {
    var frameCount: UInt64
    var totalSpan: UInt64
    var totalRaw: UInt64
    var totalStored: UInt64
    var headersChecksum: UInt64

    func encode(into raw: UnsafeMutableRawBufferPointer) {
        raw.storeBytes(of: FrameFormat.trailerMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
        raw.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
        raw.storeBytes(of: frameCount.littleEndian, toByteOffset: 8, as: UInt64.self)
        raw.storeBytes(of: totalSpan.littleEndian, toByteOffset: 16, as: UInt64.self)
        raw.storeBytes(of: totalRaw.littleEndian, toByteOffset: 24, as: UInt64.self)
        raw.storeBytes(of: totalStored.littleEndian, toByteOffset: 32, as: UInt64.self)
        raw.storeBytes(of: headersChecksum.littleEndian, toByteOffset: 40, as: UInt64.self)
        let checksum = Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<48]))
        raw.storeBytes(of: checksum.littleEndian, toByteOffset: 48, as: UInt64.self)
    }
}

/// A frame header or the trailer, as read from disk.
enum FrameRecord {
    case frame(FrameHeader)
    case trailer(Trailer)

    /// Parses and checks the 56 bytes at file offset `at`: magic, header
    /// checksum, codec, reserved fields, and lengths within the format's limits
    /// (so no later allocation trusts an unchecked size).
    static func decode(_ raw: UnsafeRawBufferPointer, path: String, frame: Int,
                       at position: UInt64, version: UInt16) throws -> FrameRecord {
        func corrupt(_ reason: String) -> ImageError {
            .corruptFrame(path: path, frame: frame, offset: position, reason: reason)
        }
        guard raw.count == FrameFormat.frameHeaderSize else { throw corrupt("header is truncated") }
        let magic = raw.loadLE(UInt32.self, at: 0)
        guard magic == FrameFormat.frameMagic || magic == FrameFormat.trailerMagic else {
            throw corrupt("bad frame magic 0x\(String(magic, radix: 16))")
        }
        let checksum = raw.loadLE(UInt64.self, at: 48)
        guard checksum == Checksum.of(UnsafeRawBufferPointer(rebasing: raw[0..<48])) else {
            throw corrupt(magic == FrameFormat.trailerMagic ? "trailer checksum mismatch" : "header checksum mismatch")
        }
        if magic == FrameFormat.trailerMagic {
            guard raw.loadLE(UInt32.self, at: 4) == 0 else { throw corrupt("reserved trailer bytes are not zero") }
            return .trailer(Trailer(frameCount: raw.loadLE(UInt64.self, at: 8),
                                    totalSpan: raw.loadLE(UInt64.self, at: 16),
                                    totalRaw: raw.loadLE(UInt64.self, at: 24),
                                    totalStored: raw.loadLE(UInt64.self, at: 32),
                                    headersChecksum: raw.loadLE(UInt64.self, at: 40)))
        }
        guard let codec = Compression(code: raw[4]) else { throw corrupt("unknown codec \(raw[4])") }
        let flags = FrameFlags(rawValue: raw[5])
        if version < 2 {
            guard flags.isEmpty else { throw corrupt("reserved header bytes are not zero") }
        } else {
            guard FrameFlags.known.isSuperset(of: flags) else {
                throw corrupt("unknown frame flags 0x\(String(flags.subtracting(.known).rawValue, radix: 16))")
            }
        }
        guard raw[6] == 0, raw[7] == 0, raw.loadLE(UInt32.self, at: 28) == 0 else {
            throw corrupt("reserved header bytes are not zero")
        }
        let header = FrameHeader(codec: codec, flags: flags,
                                 offset: raw.loadLE(UInt64.self, at: 8),
                                 span: raw.loadLE(UInt32.self, at: 16),
                                 rawLength: raw.loadLE(UInt32.self, at: 20),
                                 storedLength: raw.loadLE(UInt32.self, at: 24),
                                 rawChecksum: raw.loadLE(UInt64.self, at: 32),
                                 storedChecksum: raw.loadLE(UInt64.self, at: 40),
                                 version: version)
        if !header.checksRaw {
            guard header.rawChecksum == 0 else { throw corrupt("uncompressed data checksum is set (version \(version) leaves it 0)") }
        }
        let rawLength = Int(header.rawLength)
        let storedLength = Int(header.storedLength)
        guard rawLength > 0 else { throw corrupt("frame is empty") }
        guard rawLength <= FrameFormat.maxPayload + FrameFormat.maxSpan / 4096 / 8 else {
            throw corrupt("uncompressed length \(rawLength) exceeds the format's limit of \(FrameFormat.maxPayload) bytes")
        }
        switch codec {
        case .none:
            guard storedLength == rawLength else {
                throw corrupt("stored length \(storedLength) differs from uncompressed length \(rawLength) for codec none")
            }
        case .lz4, .zstd:
            guard storedLength > 0, storedLength <= codec.maxCompressedSize(rawLength) else {
                throw corrupt("stored length \(storedLength) is impossible for \(rawLength) bytes of \(codec.rawValue)")
            }
            if codec == .lz4 && rawLength / FrameFormat.lz4MaxRatio > storedLength {
                throw corrupt("uncompressed length \(rawLength) is impossible for \(storedLength) bytes of lz4")
            }
        }
        return .frame(header)
    }
}

extension UnsafeRawBufferPointer {
    func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

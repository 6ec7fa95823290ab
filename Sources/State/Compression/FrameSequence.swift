/// Checks that successive frames of one file fit together (offsets in order,
/// lengths consistent with the kind of file) and accumulates the totals and
/// digests that the trailer and the manifest must match. Used both when
/// walking headers at open and while streaming data, so the two agree.
struct FrameSequence {
    let path: String
    let kind: FrameKind
    let pageSize: Int
    private(set) var frameCount = 0
    private(set) var totalSpan: UInt64 = 0
    private(set) var totalRaw: UInt64 = 0
    private(set) var totalStored: UInt64 = 0
    private(set) var codecCounts: [Compression: Int] = [:]
    /// End of the previous frame's span: state frames must start exactly here,
    /// pages frames at or after it (frames never overlap).
    private(set) var nextOffset: UInt64 = 0
    private var headers = StreamingChecksum()
    private var digest = StreamingChecksum()

    /// What the trailer must record: the checksum of every frame header so far.
    var headersChecksumValue: UInt64 { headers.value }

    init(path: String, header: FileHeader, headerBytes: UnsafeRawBufferPointer) {
        self.path = path
        kind = header.kind
        pageSize = Int(header.pageSize)
        digest.update(headerBytes)
    }

    /// Validates `header` (whose 56 bytes are `bytes`, read at `position`) as
    /// the next frame.
    mutating func accept(_ header: FrameHeader, bytes: UnsafeRawBufferPointer,
                         at position: UInt64) throws {
        func corrupt(_ reason: String) -> ImageError {
            .corruptFrame(path: path, frame: frameCount, offset: position, reason: reason)
        }
        let span = UInt64(header.span)
        switch kind {
        case .state:
            guard header.flags.isEmpty else {
                throw corrupt("frame flags 0x\(String(header.flags.rawValue, radix: 16)) are meaningless in a state file")
            }
            guard header.offset == nextOffset else {
                throw corrupt("stream offset \(header.offset), expected \(nextOffset) (a frame is missing or out of order)")
            }
            guard header.span == header.rawLength else {
                throw corrupt("span \(header.span) differs from uncompressed length \(header.rawLength)")
            }
            guard Int(header.rawLength) <= FrameFormat.maxPayload else {
                throw corrupt("uncompressed length \(header.rawLength) exceeds \(FrameFormat.maxPayload)")
            }
        case .pages:
            let page = UInt64(pageSize)
            guard header.offset % page == 0, span % page == 0, span > 0, span <= UInt64(FrameFormat.maxSpan) else {
                throw corrupt("memory range \(header.offset)+\(span) is not a page-aligned, non-empty range of at most \(FrameFormat.maxSpan) bytes")
            }
            guard header.offset >= nextOffset else {
                throw corrupt("memory offset \(header.offset) overlaps or precedes the previous frame (which ends at \(nextOffset))")
            }
            guard header.offset <= UInt64.max - span else { throw corrupt("memory range overflows") }
            let pages = Int(span / page)
            let raw = Int(header.rawLength)
            if header.allPagesPresent {
                guard UInt64(raw) == span, raw <= FrameFormat.maxPayload else {
                    throw corrupt("uncompressed length \(raw) of a frame with every page present differs from its span \(span) (or exceeds \(FrameFormat.maxPayload))")
                }
            } else {
                let layout = PagesPayloadLayout(pages: pages, pageSize: pageSize)
                guard raw > layout.bitmapBytes, (raw - layout.bitmapBytes) % pageSize == 0,
                      (raw - layout.bitmapBytes) / pageSize <= pages,
                      raw - layout.bitmapBytes <= FrameFormat.maxPayload else {
                    throw corrupt("uncompressed length \(raw) does not fit \(pages) pages plus a \(layout.bitmapBytes)-byte bitmap")
                }
            }
        }
        nextOffset = header.offset + span
        frameCount += 1
        totalSpan += span
        totalRaw += UInt64(header.rawLength)
        totalStored += UInt64(header.storedLength)
        codecCounts[header.codec, default: 0] += 1
        headers.update(bytes)
        digest.update(bytes)
    }

    /// Validates the trailer against everything accepted so far; returns the
    /// file digest.
    mutating func finish(_ trailer: Trailer, bytes: UnsafeRawBufferPointer,
                         at position: UInt64) throws -> UInt64 {
        func corrupt(_ reason: String) -> ImageError {
            .corruptFile(path: path, offset: position, reason: reason)
        }
        guard trailer.frameCount == UInt64(frameCount) else {
            throw corrupt("trailer counts \(trailer.frameCount) frames, the file has \(frameCount)")
        }
        guard trailer.totalSpan == totalSpan, trailer.totalRaw == totalRaw, trailer.totalStored == totalStored else {
            throw corrupt("trailer totals do not match the frames")
        }
        guard trailer.headersChecksum == headers.value else {
            throw corrupt("trailer checksum of frame headers does not match the frames")
        }
        digest.update(bytes)
        return digest.value
    }
}

/// A pages frame's uncompressed data: a bitmap of which pages of its span are
/// stored (bit i of byte i/8, least significant first), then those pages in
/// order. All-zero pages are left out. A frame flagged `allPagesPresent` has
/// no bitmap: every page of its span follows in order.
struct PagesPayloadLayout {
    let pages: Int
    let pageSize: Int

    var bitmapBytes: Int { (pages + 7) / 8 }

    func length(presentPages: Int) -> Int { bitmapBytes + presentPages * pageSize }
}

/// An append-only byte buffer with the state stream's integer encodings
/// (LEB128 varints, zigzag for signed values, little-endian fixed width).
struct ByteWriter {
    var bytes: [UInt8] = []

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        bytes.append(byte)
    }

    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    @inline(__always)
    mutating func appendSignedVarint(_ value: Int64) {
        appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func appendFixed64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    mutating func appendFixed32(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }

    mutating func appendString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func appendBytes(_ data: [UInt8]) {
        appendVarint(UInt64(data.count))
        bytes.append(contentsOf: data)
    }
}

/// Reads what `ByteWriter` wrote. Every read is bounds-checked and every length
/// is checked against the bytes that remain before anything is allocated.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    @inline(__always)
    mutating func readByte() throws -> UInt8 {
        guard offset < bytes.count else { throw StateError.truncated }
        let byte = bytes[offset]
        offset += 1
        return byte
    }

    @inline(__always)
    mutating func readVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63 && byte > 1 {
                throw StateError.malformed("varint overflows 64 bits at offset \(offset - 1)")
            }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 {
                throw StateError.malformed("varint longer than 10 bytes at offset \(offset - 1)")
            }
        }
    }

    mutating func readSignedVarint() throws -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func readFixed64() throws -> UInt64 {
        guard remaining >= 8 else { throw StateError.truncated }
        var value: UInt64 = 0
        for index in 0..<8 {
            value |= UInt64(bytes[offset + index]) << UInt64(index * 8)
        }
        offset += 8
        return value
    }

    mutating func readFixed32() throws -> UInt32 {
        guard remaining >= 4 else { throw StateError.truncated }
        var value: UInt32 = 0
        for index in 0..<4 {
            value |= UInt32(bytes[offset + index]) << UInt32(index * 8)
        }
        offset += 4
        return value
    }

    /// A count of items that each take at least `minimumBytesEach` bytes.
    mutating func readCount(minimumBytesEach: Int = 1) throws -> Int {
        let count = try readVarint()
        guard count <= UInt64(remaining / max(minimumBytesEach, 1)) else {
            throw StateError.malformed("count \(count) at offset \(offset) exceeds the \(remaining) bytes left")
        }
        return Int(count)
    }

    mutating func readBytes() throws -> [UInt8] {
        let length = try readCount()
        let slice = bytes[offset..<(offset + length)]
        offset += length
        return Array(slice)
    }

    mutating func readString() throws -> String {
        let length = try readCount()
        let start = offset
        offset += length
        return try bytes.withUnsafeBufferPointer { buffer in
            let slice = UnsafeBufferPointer(rebasing: buffer[start..<(start + length)])
            guard let string = String(validating: slice, as: UTF8.self) else {
                throw StateError.malformed("invalid UTF-8 in a string at offset \(start)")
            }
            return string
        }
    }

    mutating func readMagic(_ expected: [UInt8]) throws -> Bool {
        guard remaining >= expected.count else { return false }
        let matches = bytes[offset..<(offset + expected.count)].elementsEqual(expected)
        offset += expected.count
        return matches
    }
}

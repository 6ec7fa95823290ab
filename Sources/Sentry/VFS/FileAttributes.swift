import Glibc
import State

/// A file timestamp as Linux keeps it: seconds and nanoseconds since the epoch.
public struct FileTime: SavableStruct, Sendable, Equatable, Comparable {
    public static let savedTypeName = "vfs.FileTime"
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// A host stat's time.
    public init(_ spec: timespec) {
        self.init(seconds: Int64(spec.tv_sec), nanoseconds: Int64(spec.tv_nsec))
    }

    /// CLOCK_REALTIME now: file times follow the host's wall clock (DESIGN.md, virtual clocks).
    public static func now() -> FileTime {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return FileTime(spec)
    }

    public static func < (lhs: FileTime, rhs: FileTime) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("seconds", seconds)
        try sink.save("nanoseconds", nanoseconds)
    }

    public init(from source: inout LoadSource) throws {
        seconds = try source.load("seconds")
        nanoseconds = try source.load("nanoseconds")
    }
}

/// What stat(2) reports about a file, independent of which call asked.
public struct FileAttributes: Sendable, Equatable {
    public var device: UInt64 = 0
    public var inodeNumber: UInt64 = 0
    public var mode: UInt32 = 0
    public var linkCount: UInt64 = 1
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var specialDevice: UInt64 = 0
    public var size: Int64 = 0
    public var blockSize: Int64 = 4096
    public var blocks: Int64 = 0
    public var accessTime = FileTime(seconds: 0, nanoseconds: 0)
    public var modificationTime = FileTime(seconds: 0, nanoseconds: 0)
    public var changeTime = FileTime(seconds: 0, nanoseconds: 0)

    public init() {}

    public var type: FileType? { FileType(mode: mode) }

    /// `struct stat` as x86_64 lays it out (144 bytes).
    public func encodeStat() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 144)
        out.put(device, at: 0)
        out.put(inodeNumber, at: 8)
        out.put(linkCount, at: 16)
        out.put(mode, at: 24)
        out.put(uid, at: 28)
        out.put(gid, at: 32)
        out.put(specialDevice, at: 40)
        out.put(size, at: 48)
        out.put(blockSize, at: 56)
        out.put(blocks, at: 64)
        out.put(accessTime.seconds, at: 72)
        out.put(accessTime.nanoseconds, at: 80)
        out.put(modificationTime.seconds, at: 88)
        out.put(modificationTime.nanoseconds, at: 96)
        out.put(changeTime.seconds, at: 104)
        out.put(changeTime.nanoseconds, at: 112)
        return out
    }

    /// The basic statx fields we always fill (STATX_BASIC_STATS).
    public static let statxBasicStats: UInt32 = 0x7ff

    /// `struct statx` (256 bytes). We fill every basic field whatever the mask
    /// asks, as Linux may; no birth time.
    public func encodeStatx() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 256)
        out.put(Self.statxBasicStats, at: 0)
        out.put(UInt32(truncatingIfNeeded: blockSize), at: 4)
        out.put(UInt32(truncatingIfNeeded: linkCount), at: 16)
        out.put(uid, at: 20)
        out.put(gid, at: 24)
        out.put(UInt16(truncatingIfNeeded: mode), at: 28)
        out.put(inodeNumber, at: 32)
        out.put(UInt64(bitPattern: size), at: 40)
        out.put(UInt64(bitPattern: blocks), at: 48)
        for (time, offset) in [(accessTime, 64), (changeTime, 96), (modificationTime, 112)] {
            out.put(time.seconds, at: offset)
            out.put(UInt32(truncatingIfNeeded: time.nanoseconds), at: offset + 8)
        }
        out.put(DeviceNumber.major(specialDevice), at: 128)
        out.put(DeviceNumber.minor(specialDevice), at: 132)
        out.put(DeviceNumber.major(device), at: 136)
        out.put(DeviceNumber.minor(device), at: 140)
        return out
    }
}

/// Linux's dev_t encoding (new_encode_dev / huge_encode_dev as glibc's makedev).
public enum DeviceNumber {
    public static func make(major: UInt32, minor: UInt32) -> UInt64 {
        let major = UInt64(major), minor = UInt64(minor)
        return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32)
    }

    public static func major(_ device: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff))
    }

    public static func minor(_ device: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: (device & 0xff) | ((device >> 12) & ~0xff))
    }
}

/// Which attributes a setattr changes (chmod, chown, truncate, utimes).
public struct AttributeChange: Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: Int64?
    public var accessTime: FileTime?
    public var modificationTime: FileTime?

    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: Int64? = nil,
                accessTime: FileTime? = nil, modificationTime: FileTime? = nil) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.accessTime = accessTime
        self.modificationTime = modificationTime
    }
}

extension Array where Element == UInt8 {
    /// The little-endian `T` at `offset` (the array must be long enough).
    func littleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(truncatingIfNeeded: self[offset + index]) << (8 * index) }
        return value
    }

    /// Stores `value` little-endian at `offset` (the array must be long enough).
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { bytes in
            for (index, byte) in bytes.enumerated() { self[offset + index] = byte }
        }
    }
}

/// The shape of a saved value, as recorded per field in the image's schema.
public indirect enum StateKind: Hashable, Sendable, CustomStringConvertible {
    case int
    case uint
    case bool
    case double
    case string
    case bytes
    /// A reference to a `Savable` object whose static type has this saved name.
    case object(String)
    case optional(StateKind)
    case array(StateKind)
    case map(StateKind, StateKind)
    /// A `SavableStruct` with this saved name.
    case record(String)
    /// An enum with payloads, saved as a case name and its payload values.
    case enumeration(String)

    public var description: String {
        switch self {
        case .int: "int"
        case .uint: "uint"
        case .bool: "bool"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .object(let name): "&\(name)"
        case .optional(let inner): "\(inner)?"
        case .array(let element): "[\(element)]"
        case .map(let key, let value): "[\(key): \(value)]"
        case .record(let name): name
        case .enumeration(let name): "enum \(name)"
        }
    }
}

extension StateKind {
    /// Whether a value saved with this kind loads as `build`: the same kind, or
    /// the same kind made optional (a field that became optional keeps old images).
    public func canLoad(as build: StateKind) -> Bool {
        if self == build { return true }
        switch (self, build) {
        case (.optional(let image), .optional(let wanted)): return image.canLoad(as: wanted)
        case (_, .optional(let wanted)): return canLoad(as: wanted)
        case (.array(let image), .array(let wanted)): return image.canLoad(as: wanted)
        case (.map(let imageKey, let imageValue), .map(let key, let value)):
            return imageKey.canLoad(as: key) && imageValue.canLoad(as: value)
        default: return false
        }
    }
}

extension StateKind {
    private enum Code: UInt8 {
        case int = 1, uint, bool, double, string, bytes, object, optional, array, map, record, enumeration
    }

    func write(to buffer: inout ByteWriter) {
        switch self {
        case .int: buffer.append(Code.int.rawValue)
        case .uint: buffer.append(Code.uint.rawValue)
        case .bool: buffer.append(Code.bool.rawValue)
        case .double: buffer.append(Code.double.rawValue)
        case .string: buffer.append(Code.string.rawValue)
        case .bytes: buffer.append(Code.bytes.rawValue)
        case .object(let name):
            buffer.append(Code.object.rawValue)
            buffer.appendString(name)
        case .optional(let inner):
            buffer.append(Code.optional.rawValue)
            inner.write(to: &buffer)
        case .array(let element):
            buffer.append(Code.array.rawValue)
            element.write(to: &buffer)
        case .map(let key, let value):
            buffer.append(Code.map.rawValue)
            key.write(to: &buffer)
            value.write(to: &buffer)
        case .record(let name):
            buffer.append(Code.record.rawValue)
            buffer.appendString(name)
        case .enumeration(let name):
            buffer.append(Code.enumeration.rawValue)
            buffer.appendString(name)
        }
    }

    static func read(from reader: inout ByteReader, depth: Int = 0) throws -> StateKind {
        guard depth < StateLimits.maximumDepth else {
            throw StateError.malformed("field kind nested deeper than \(StateLimits.maximumDepth)")
        }
        let byte = try reader.readByte()
        guard let code = Code(rawValue: byte) else {
            throw StateError.malformed("unknown field kind code \(byte)")
        }
        switch code {
        case .int: return .int
        case .uint: return .uint
        case .bool: return .bool
        case .double: return .double
        case .string: return .string
        case .bytes: return .bytes
        case .object: return .object(try reader.readString())
        case .optional: return .optional(try read(from: &reader, depth: depth + 1))
        case .array: return .array(try read(from: &reader, depth: depth + 1))
        case .map:
            let key = try read(from: &reader, depth: depth + 1)
            return .map(key, try read(from: &reader, depth: depth + 1))
        case .record: return .record(try reader.readString())
        case .enumeration: return .enumeration(try reader.readString())
        }
    }
}

enum StateLimits {
    /// Values nest (arrays of records of maps...) no deeper than this, so a
    /// hostile image cannot exhaust the stack.
    static let maximumDepth = 96
}

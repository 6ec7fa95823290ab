/// A decoded value, before it is given its Swift type. Images are decoded into
/// these first so that references to objects later in the stream can be resolved
/// and so that tools (`runsc statefile`) can read an image without the kernel's types.
public enum StateValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case array([StateValue])
    case map(keys: [StateValue], values: [StateValue])
    /// A reference to object `id` (1-based, in stream order).
    case object(UInt32)
    /// A struct: its schema's index and its field values in schema order.
    case record(typeIndex: Int, values: [StateValue])
    case enumCase(String, payload: [StateValue])

    var integerDescription: String {
        switch self {
        case .int(let value): String(value)
        case .uint(let value): String(value)
        default: kindName
        }
    }

    public var kindName: String {
        switch self {
        case .null: "nil"
        case .bool: "bool"
        case .int: "int"
        case .uint: "uint"
        case .double: "double"
        case .string: "string"
        case .bytes: "bytes"
        case .array: "array"
        case .map: "map"
        case .object: "object reference"
        case .record: "struct"
        case .enumCase: "enum case"
        }
    }
}

/// One-byte tags that precede every value on the wire, so an image can be
/// walked without knowing the types that wrote it.
enum ValueTag: UInt8 {
    case null = 0, falseValue, trueValue, int, uint, double, string, bytes, array, map, object, record, enumCase
}

extension StateValue {
    /// Decodes one tagged value. Every count is checked against the bytes left,
    /// so a hostile length cannot make us allocate more than the input justifies.
    static func read(from reader: inout ByteReader, schemaCount: Int, fieldCounts: [Int],
                     depth: Int = 0) throws -> StateValue {
        guard depth < StateLimits.maximumDepth else {
            throw StateError.malformed("values nested deeper than \(StateLimits.maximumDepth)")
        }
        let byte = try reader.readByte()
        guard let tag = ValueTag(rawValue: byte) else {
            throw StateError.malformed("unknown value tag \(byte) at offset \(reader.offset - 1)")
        }
        switch tag {
        case .null: return .null
        case .falseValue: return .bool(false)
        case .trueValue: return .bool(true)
        case .int: return .int(try reader.readSignedVarint())
        case .uint: return .uint(try reader.readVarint())
        case .double: return .double(Double(bitPattern: try reader.readFixed64()))
        case .string: return .string(try reader.readString())
        case .bytes: return .bytes(try reader.readBytes())
        case .array:
            let count = try reader.readCount()
            var values: [StateValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count {
                values.append(try read(from: &reader, schemaCount: schemaCount, fieldCounts: fieldCounts,
                                       depth: depth + 1))
            }
            return .array(values)
        case .map:
            let count = try reader.readCount(minimumBytesEach: 2)
            var keys: [StateValue] = []
            var values: [StateValue] = []
            keys.reserveCapacity(count)
            values.reserveCapacity(count)
            for _ in 0..<count {
                keys.append(try read(from: &reader, schemaCount: schemaCount, fieldCounts: fieldCounts,
                                     depth: depth + 1))
                values.append(try read(from: &reader, schemaCount: schemaCount, fieldCounts: fieldCounts,
                                       depth: depth + 1))
            }
            return .map(keys: keys, values: values)
        case .object:
            let id = try reader.readVarint()
            guard id >= 1, id <= UInt64(UInt32.max) else {
                throw StateError.malformed("object reference \(id) out of range")
            }
            return .object(UInt32(id))
        case .record:
            let index = try reader.readVarint()
            guard index < UInt64(schemaCount) else {
                throw StateError.malformed("struct of unknown schema type \(index)")
            }
            let fieldCount = fieldCounts[Int(index)]
            guard fieldCount <= reader.remaining else { throw StateError.truncated }
            var values: [StateValue] = []
            values.reserveCapacity(fieldCount)
            for _ in 0..<fieldCount {
                values.append(try read(from: &reader, schemaCount: schemaCount, fieldCounts: fieldCounts,
                                       depth: depth + 1))
            }
            return .record(typeIndex: Int(index), values: values)
        case .enumCase:
            let name = try reader.readString()
            let count = try reader.readCount()
            var payload: [StateValue] = []
            payload.reserveCapacity(count)
            for _ in 0..<count {
                payload.append(try read(from: &reader, schemaCount: schemaCount, fieldCounts: fieldCounts,
                                        depth: depth + 1))
            }
            return .enumCase(name, payload: payload)
        }
    }
}

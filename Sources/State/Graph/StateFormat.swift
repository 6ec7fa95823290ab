/// The layout of an encoded object graph (the content of `state.img`):
///
///     magic "RUNSCSG\0", format version (u32 LE)
///     schema: count, then per type: name, is-object flag, field count, (field name, kind)*
///     objects: count, then per object: schema index, one tagged value per schema field
///     root object id
///
/// Types and field names are written once, in the schema; values carry a
/// one-byte tag so the stream can be walked without the types that wrote it.
public enum StateFormat {
    static let magic: [UInt8] = Array("RUNSCSG".utf8) + [0]
    /// The version this build writes.
    public static let currentVersion: UInt32 = 1
    /// Every version this build reads.
    public static let readableVersions: [UInt32] = [1]
}

/// One type's entry in the schema.
final class TypeSchema {
    let name: String
    let isObject: Bool
    var names: [String] = []
    /// `nil` for fields a migration introduced: their kind is not checked.
    var kinds: [StateKind?] = []
    /// Whether a field's kind was already checked against the loading type.
    var verified: [Bool] = []
    private var lookup: [String: Int]?

    init(name: String, isObject: Bool) {
        self.name = name
        self.isObject = isObject
    }

    func append(name: String, kind: StateKind?) {
        names.append(name)
        kinds.append(kind)
        verified.append(false)
        lookup = nil
    }

    /// The schema part of a stream: the count, then each type's name, flag and fields.
    static func write(_ schemas: [TypeSchema], to stream: inout ByteWriter) throws {
        stream.appendVarint(UInt64(schemas.count))
        for schema in schemas {
            stream.appendString(schema.name)
            stream.append(schema.isObject ? 1 : 0)
            stream.appendVarint(UInt64(schema.names.count))
            for (name, kind) in zip(schema.names, schema.kinds) {
                guard let kind else {
                    throw StateError(.schemaViolation("\(schema.name).\(name) has no recorded kind"))
                }
                stream.appendString(name)
                kind.write(to: &stream)
            }
        }
    }

    func index(of field: String) -> Int? {
        if lookup == nil {
            var table: [String: Int] = [:]
            for (index, name) in names.enumerated() where table[name] == nil {
                table[name] = index
            }
            lookup = table
        }
        return lookup?[field]
    }
}

/// An object graph read from bytes into untyped values: the first step of
/// loading, and all that `runsc statefile` needs.
public struct StateStream {
    public struct Object {
        public let typeIndex: Int
        public let values: [StateValue]
        /// Encoded size of this object's fields, for summaries.
        public let encodedSize: Int
    }

    public let version: UInt32
    let schemas: [TypeSchema]
    public let objects: [Object]
    public let rootID: UInt32

    public var typeNames: [String] { schemas.map(\.name) }

    public func fields(ofType index: Int) -> [(name: String, kind: String)] {
        let schema = schemas[index]
        return zip(schema.names, schema.kinds).map { ($0, $1?.description ?? "?") }
    }

    public func isObjectType(_ index: Int) -> Bool { schemas[index].isObject }

    public init(bytes: [UInt8]) throws {
        var reader = ByteReader(bytes)
        guard try reader.readMagic(StateFormat.magic) else { throw StateError(.badMagic) }
        version = try reader.readFixed32()
        guard StateFormat.readableVersions.contains(version) else {
            throw StateError(.unsupportedVersion(found: version, supported: StateFormat.readableVersions))
        }
        let typeCount = try reader.readCount(minimumBytesEach: 3)
        var schemas: [TypeSchema] = []
        schemas.reserveCapacity(typeCount)
        var seenNames = Set<String>()
        for _ in 0..<typeCount {
            let name = try reader.readString()
            guard seenNames.insert(name).inserted else {
                throw StateError.malformed("type \(name) appears twice in the schema")
            }
            let flag = try reader.readByte()
            guard flag <= 1 else { throw StateError.malformed("bad object flag \(flag) for type \(name)") }
            let schema = TypeSchema(name: name, isObject: flag == 1)
            let fieldCount = try reader.readCount(minimumBytesEach: 2)
            for _ in 0..<fieldCount {
                let fieldName = try reader.readString()
                guard schema.index(of: fieldName) == nil else {
                    throw StateError.malformed("field \(name).\(fieldName) appears twice")
                }
                schema.append(name: fieldName, kind: try StateKind.read(from: &reader))
            }
            schemas.append(schema)
        }
        let fieldCounts = schemas.map(\.names.count)
        let objectCount = try reader.readCount()
        guard objectCount < Int(UInt32.max) else { throw StateError.malformed("too many objects") }
        var objects: [Object] = []
        objects.reserveCapacity(objectCount)
        for index in 0..<objectCount {
            let start = reader.offset
            let typeIndex = try reader.readVarint()
            guard typeIndex < UInt64(schemas.count), schemas[Int(typeIndex)].isObject else {
                throw StateError.malformed("object \(index + 1) has type index \(typeIndex), not an object type")
            }
            let schema = schemas[Int(typeIndex)]
            guard schema.names.count <= reader.remaining else { throw StateError.truncated }
            var values: [StateValue] = []
            values.reserveCapacity(schema.names.count)
            for field in schema.names {
                do {
                    values.append(try StateValue.read(from: &reader, schemaCount: schemas.count,
                                                      fieldCounts: fieldCounts))
                } catch let error as StateError {
                    throw error.within(field).within("\(schema.name)#\(index + 1)")
                }
            }
            objects.append(Object(typeIndex: Int(typeIndex), values: values, encodedSize: reader.offset - start))
        }
        let root = try reader.readVarint()
        guard root >= 1, root <= UInt64(objects.count) else {
            throw StateError.malformed("root object \(root) does not exist (\(objects.count) objects)")
        }
        guard reader.isAtEnd else {
            throw StateError.malformed("\(reader.remaining) unexpected bytes after the root")
        }
        self.schemas = schemas
        self.objects = objects
        self.rootID = UInt32(root)
    }

    /// The route from the root to object `id`, as field names and indices:
    /// only computed when an error needs it.
    public func path(to id: UInt32) -> [String] {
        guard id != rootID else { return [schemas[objects[Int(rootID) - 1].typeIndex].name] }
        var via: [UInt32: (parent: UInt32, components: [String])] = [rootID: (0, [])]
        var queue: [UInt32] = [rootID]
        var next = 0
        while next < queue.count {
            let current = queue[next]
            next += 1
            let object = objects[Int(current) - 1]
            let schema = schemas[object.typeIndex]
            for (field, value) in zip(schema.names, object.values) {
                forEachReference(in: value, components: [field]) { target, components in
                    guard via[target] == nil, target >= 1, Int(target) <= objects.count else { return }
                    via[target] = (current, components)
                    queue.append(target)
                }
            }
            if via[id] != nil { break }
        }
        guard via[id] != nil else { return ["\(schemas[objects[Int(id) - 1].typeIndex].name)#\(id)"] }
        var components: [String] = []
        var current = id
        while current != rootID, let step = via[current] {
            components.insert(contentsOf: step.components, at: 0)
            current = step.parent
        }
        return [schemas[objects[Int(rootID) - 1].typeIndex].name] + components
    }

    private func forEachReference(in value: StateValue, components: [String],
                                  _ body: (UInt32, [String]) -> Void) {
        switch value {
        case .object(let id): body(id, components)
        case .array(let elements):
            for (index, element) in elements.enumerated() {
                forEachReference(in: element, components: components + ["[\(index)]"], body)
            }
        case .map(let keys, let values):
            for (key, element) in zip(keys, values) {
                forEachReference(in: element, components: components + ["[\(Self.describeKey(key))]"], body)
            }
        case .record(let typeIndex, let values):
            for (field, element) in zip(schemas[typeIndex].names, values) {
                forEachReference(in: element, components: components + [field], body)
            }
        case .enumCase(let name, let payload):
            for (index, element) in payload.enumerated() {
                forEachReference(in: element, components: components + ["\(name).\(index)"], body)
            }
        default: break
        }
    }

    static func describeKey(_ key: StateValue) -> String {
        switch key {
        case .int(let value): String(value)
        case .uint(let value): String(value)
        case .string(let value): value
        case .bool(let value): String(value)
        default: key.kindName
        }
    }
}

extension StateStream {
    /// The stream as bytes again, each object's values replaced by
    /// `values(index)`'s (its own when that returns nil): what a tool that
    /// edits an image's graph writes back, and how the tests make hostile
    /// images. The schema is kept as it was.
    public func encoded(values: (Int) -> [StateValue]? = { _ in nil }) throws -> [UInt8] {
        var stream = ByteWriter()
        stream.bytes.append(contentsOf: StateFormat.magic)
        stream.appendFixed32(version)
        try TypeSchema.write(schemas, to: &stream)
        stream.appendVarint(UInt64(objects.count))
        for (index, object) in objects.enumerated() {
            let fields = values(index) ?? object.values
            guard fields.count == schemas[object.typeIndex].names.count else {
                throw StateError(.schemaViolation("object \(index + 1) has \(fields.count) values for "
                    + "\(schemas[object.typeIndex].names.count) fields"))
            }
            stream.appendVarint(UInt64(truncatingIfNeeded: object.typeIndex))
            for value in fields { value.write(to: &stream) }
        }
        stream.appendVarint(UInt64(rootID))
        return stream.bytes
    }

    /// The names of the fields of the record or object type `index`, in stream order.
    public func fieldNames(ofType index: Int) -> [String] { schemas[index].names }
}

extension StateValue {
    /// Writes the value with its tag, as `read(from:)` reads it.
    func write(to writer: inout ByteWriter) {
        switch self {
        case .null: writer.append(ValueTag.null.rawValue)
        case .bool(let value): writer.append(value ? ValueTag.trueValue.rawValue : ValueTag.falseValue.rawValue)
        case .int(let value):
            writer.append(ValueTag.int.rawValue)
            writer.appendSignedVarint(value)
        case .uint(let value):
            writer.append(ValueTag.uint.rawValue)
            writer.appendVarint(value)
        case .double(let value):
            writer.append(ValueTag.double.rawValue)
            writer.appendFixed64(value.bitPattern)
        case .string(let value):
            writer.append(ValueTag.string.rawValue)
            writer.appendString(value)
        case .bytes(let value):
            writer.append(ValueTag.bytes.rawValue)
            writer.appendBytes(value)
        case .array(let elements):
            writer.append(ValueTag.array.rawValue)
            writer.appendVarint(UInt64(elements.count))
            for element in elements { element.write(to: &writer) }
        case .map(let keys, let values):
            writer.append(ValueTag.map.rawValue)
            writer.appendVarint(UInt64(min(keys.count, values.count)))
            for (key, value) in zip(keys, values) {
                key.write(to: &writer)
                value.write(to: &writer)
            }
        case .object(let id):
            writer.append(ValueTag.object.rawValue)
            writer.appendVarint(UInt64(id))
        case .record(let typeIndex, let values):
            writer.append(ValueTag.record.rawValue)
            writer.appendVarint(UInt64(truncatingIfNeeded: typeIndex))
            for value in values { value.write(to: &writer) }
        case .enumCase(let name, let payload):
            writer.append(ValueTag.enumCase.rawValue)
            writer.appendString(name)
            writer.appendVarint(UInt64(payload.count))
            for value in payload { value.write(to: &writer) }
        }
    }
}

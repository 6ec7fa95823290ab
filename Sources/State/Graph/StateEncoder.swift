/// Writes an object graph reachable from one root. Objects are written
/// breadth-first, each exactly once: a reference only enqueues its target, so
/// shared objects and cycles cost nothing special and deep graphs use no stack.
public final class StateEncoder {
    var output = ByteWriter()
    var schemas: [TypeSchema] = []
    private var schemaStates: [SchemaState] = []
    private var schemaIndexByType: [ObjectIdentifier: Int] = [:]
    private var typeNameOwners: [String: Any.Type] = [:]
    private var objectIDs = ObjectIDTable()
    private var objects: [any Savable] = []
    /// For each object, who first referenced it and through which field: only
    /// read to name the path in an error.
    private var referrers: [(parent: UInt32, schema: Int32, field: Int32)] = []
    var currentObject: UInt32 = 0
    /// The field being written, as schema and field index: cheaper to keep
    /// current than a name, and only turned into names for an error.
    var currentSchema: Int32 = -1
    var currentField: Int32 = -1
    private let registry: StateRegistry?

    private enum SchemaState { case undefined, defining, defined }

    /// - Parameter registry: when given, every object's type must be registered
    ///   in it, so that an image that could not be loaded back is never written.
    public init(registry: StateRegistry? = nil) {
        self.registry = registry
    }

    public static func encode(root: some Savable, registry: StateRegistry? = nil) throws -> [UInt8] {
        try StateEncoder(registry: registry).encode(root: root)
    }

    public func encode(root: some Savable) throws -> [UInt8] {
        let rootID = objectID(for: root)
        var next = 0
        while next < objects.count {
            try encodeObject(objects[next], id: UInt32(next + 1))
            next += 1
        }
        var stream = ByteWriter()
        stream.bytes.reserveCapacity(output.bytes.count + 64 * schemas.count + 32)
        stream.bytes.append(contentsOf: StateFormat.magic)
        stream.appendFixed32(StateFormat.currentVersion)
        try TypeSchema.write(schemas, to: &stream)
        stream.appendVarint(UInt64(objects.count))
        stream.bytes.append(contentsOf: output.bytes)
        stream.appendVarint(UInt64(rootID))
        return stream.bytes
    }

    func objectID(for object: any Savable) -> UInt32 {
        if let id = objectIDs.id(for: object) { return id }
        objects.append(object)
        referrers.append((currentObject, currentSchema, currentField))
        let id = UInt32(objects.count)
        objectIDs.insert(object, id: id)
        return id
    }

    private func encodeObject(_ object: any Savable, id: UInt32) throws {
        let type = type(of: object)
        let known = schemas.count
        let index = try schemaIndex(for: type, name: type.savedTypeName, isObject: true)
        if index >= known, let registry, !registry.knows(type.savedTypeName) {
            throw StateError(.unregisteredType(type.savedTypeName), path: path(to: id))
        }
        output.appendVarint(UInt64(index))
        currentObject = id
        do {
            var sink = try beginFields(schemaIndex: index)
            currentSchema = -1
            try object.save(to: &sink)
            try endFields(sink)
        } catch let error as StateError {
            throw StateError(error.reason, path: path(to: id) + error.path)
        }
    }

    func beginFields(schemaIndex index: Int) throws -> SaveSink {
        switch schemaStates[index] {
        case .undefined:
            schemaStates[index] = .defining
            return SaveSink(encoder: self, schema: schemas[index], schemaIndex: index, defining: true)
        case .defined:
            return SaveSink(encoder: self, schema: schemas[index], schemaIndex: index, defining: false)
        case .defining:
            throw StateError(.schemaViolation(
                "\(schemas[index].name) contains itself by value; make it a Savable class"))
        }
    }

    func endFields(_ sink: SaveSink) throws {
        let schema = sink.schema
        if sink.defining {
            schemaStates[Int(sink.schemaIndex)] = .defined
        } else if sink.cursor != schema.names.count {
            throw StateError(.schemaViolation(
                "\(schema.name) saved \(sink.cursor) fields here but \(schema.names.count) for an earlier value: "
                    + "save(to:) must write the same fields every time"))
        }
    }

    func schemaIndex(for type: Any.Type, name: String, isObject: Bool) throws -> Int {
        let key = ObjectIdentifier(type)
        if let index = schemaIndexByType[key] { return index }
        if let owner = typeNameOwners[name] {
            throw StateError(.schemaViolation("\(owner) and \(type) both save as \"\(name)\""))
        }
        typeNameOwners[name] = type
        let index = schemas.count
        schemas.append(TypeSchema(name: name, isObject: isObject))
        schemaStates.append(.undefined)
        schemaIndexByType[key] = index
        return index
    }

    private func path(to id: UInt32) -> [String] {
        var components: [String] = []
        var current = id
        var steps = 0
        while current != 0, steps < referrers.count {
            let (parent, schema, field) = referrers[Int(current) - 1]
            if parent == 0 {
                components.insert(type(of: objects[Int(current) - 1]).savedTypeName, at: 0)
                break
            }
            if schema >= 0, Int(schema) < schemas.count, Int(field) < schemas[Int(schema)].names.count {
                components.insert(schemas[Int(schema)].names[Int(field)], at: 0)
            }
            current = parent
            steps += 1
        }
        return components
    }
}

/// Where a `Savable` or `SavableStruct` writes its fields, by name.
public struct SaveSink {
    let encoder: StateEncoder
    let schema: TypeSchema
    let schemaIndex: Int32
    let defining: Bool
    var cursor = 0

    init(encoder: StateEncoder, schema: TypeSchema, schemaIndex: Int, defining: Bool) {
        self.encoder = encoder
        self.schema = schema
        self.schemaIndex = Int32(schemaIndex)
        self.defining = defining
    }

    /// Saves one field. A type must save the same fields in the same order
    /// every time: they become its schema.
    public mutating func save<T: SavableValue>(_ name: String, _ value: T) throws {
        if defining {
            schema.append(name: name, kind: T.stateKind)
        } else if cursor >= schema.names.count || schema.names[cursor] != name {
            throw StateError(.schemaViolation(
                "\(schema.name) saved field \"\(name)\" where an earlier value saved "
                    + (cursor < schema.names.count ? "\"\(schema.names[cursor])\"" : "no more fields")))
        }
        let outer = (encoder.currentSchema, encoder.currentField)
        encoder.currentSchema = schemaIndex
        encoder.currentField = Int32(cursor)
        cursor += 1
        defer { (encoder.currentSchema, encoder.currentField) = outer }
        var writer = StateWriter(encoder: encoder)
        do {
            try value.saveState(to: &writer)
        } catch let error as StateError {
            throw error.within(name)
        }
    }
}

/// Writes tagged values; `SavableValue` conformances use it directly.
public struct StateWriter {
    let encoder: StateEncoder

    public mutating func writeNull() { encoder.output.append(ValueTag.null.rawValue) }

    public mutating func writeBool(_ value: Bool) {
        encoder.output.append(value ? ValueTag.trueValue.rawValue : ValueTag.falseValue.rawValue)
    }

    public mutating func writeInt(_ value: Int64) {
        encoder.output.append(ValueTag.int.rawValue)
        encoder.output.appendSignedVarint(value)
    }

    public mutating func writeUInt(_ value: UInt64) {
        encoder.output.append(ValueTag.uint.rawValue)
        encoder.output.appendVarint(value)
    }

    public mutating func writeDouble(_ value: Double) {
        encoder.output.append(ValueTag.double.rawValue)
        encoder.output.appendFixed64(value.bitPattern)
    }

    public mutating func writeString(_ value: String) {
        encoder.output.append(ValueTag.string.rawValue)
        encoder.output.appendString(value)
    }

    public mutating func writeBytes(_ value: [UInt8]) {
        encoder.output.append(ValueTag.bytes.rawValue)
        encoder.output.appendBytes(value)
    }

    public mutating func writeObject(_ object: any Savable) {
        let id = encoder.objectID(for: object)
        encoder.output.append(ValueTag.object.rawValue)
        encoder.output.appendVarint(UInt64(id))
    }

    public mutating func writeArray<C: Collection>(_ elements: C) throws where C.Element: SavableValue {
        encoder.output.append(ValueTag.array.rawValue)
        encoder.output.appendVarint(UInt64(elements.count))
        var index = 0
        for element in elements {
            do {
                try element.saveState(to: &self)
            } catch let error as StateError {
                throw error.within("[\(index)]")
            }
            index += 1
        }
    }

    public mutating func writeMap<K: SavableValue, V: SavableValue>(_ entries: [(K, V)]) throws {
        encoder.output.append(ValueTag.map.rawValue)
        encoder.output.appendVarint(UInt64(entries.count))
        for (key, value) in entries {
            try key.saveState(to: &self)
            do {
                try value.saveState(to: &self)
            } catch let error as StateError {
                throw error.within("[\(key)]")
            }
        }
    }

    /// An enum case with its payload, e.g. `writeEnumCase("exited", status)`.
    public mutating func writeEnumCase<each Payload: SavableValue>(_ name: String,
                                                                    _ payload: repeat each Payload) throws {
        encoder.output.append(ValueTag.enumCase.rawValue)
        encoder.output.appendString(name)
        var count = 0
        for _ in repeat each payload { count += 1 }
        encoder.output.appendVarint(UInt64(count))
        for value in repeat each payload {
            try value.saveState(to: &self)
        }
    }

    public mutating func writeRecord<S: SavableStruct>(_ value: S) throws {
        let index = try encoder.schemaIndex(for: S.self, name: S.savedTypeName, isObject: false)
        encoder.output.append(ValueTag.record.rawValue)
        encoder.output.appendVarint(UInt64(index))
        var sink = try encoder.beginFields(schemaIndex: index)
        try value.save(to: &sink)
        try encoder.endFields(sink)
    }
}

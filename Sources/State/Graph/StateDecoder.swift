/// Loads an object graph: every object is allocated first, then each loads its
/// fields (references resolve to the already allocated objects, so cycles
/// work), the root before any other, then `afterLoad` runs children first.
public struct StateDecoder {
    public let registry: StateRegistry

    public init(registry: StateRegistry) {
        self.registry = registry
    }

    public func decode(_ bytes: [UInt8]) throws -> any Savable {
        try decode(StateStream(bytes: bytes))
    }

    public func decode<Root: Savable>(_ bytes: [UInt8], as rootType: Root.Type) throws -> Root {
        let root = try decode(bytes)
        guard let typed = root as? Root else {
            throw StateError.mismatch(expected: "root \(Root.savedTypeName)",
                                      found: type(of: root).savedTypeName)
        }
        return typed
    }

    public func decode(_ stream: StateStream) throws -> any Savable {
        let context = LoadContext(stream: stream, registry: registry)
        var objects: [any Savable] = []
        objects.reserveCapacity(stream.objects.count)
        for (index, object) in stream.objects.enumerated() {
            let name = stream.schemas[object.typeIndex].name
            guard let instance = registry.make(name) else {
                throw StateError(.unknownType(name), path: stream.path(to: UInt32(index + 1)))
            }
            objects.append(instance)
        }
        context.objects = objects
        let rootIndex = Int(stream.rootID) - 1
        context.rootIndex = rootIndex
        func load(_ index: Int) throws {
            let object = stream.objects[index]
            do {
                var source = try context.source(typeIndex: object.typeIndex, values: object.values,
                                                 expecting: nil)
                try objects[index].load(from: &source)
                try source.finish()
            } catch let error as StateError {
                throw StateError(error.reason, path: stream.path(to: UInt32(index + 1)) + error.path)
            }
        }
        // The root first: every other object may read what it loaded (`LoadSource.root`).
        try load(rootIndex)
        for index in objects.indices where index != rootIndex { try load(index) }
        for index in objects.indices.reversed() {
            do {
                try objects[index].afterLoad()
            } catch let error as StateError {
                throw StateError(error.reason, path: stream.path(to: UInt32(index + 1)) + error.path)
            }
        }
        return objects[rootIndex]
    }
}

/// What values need while loading: the allocated objects and the schema.
public final class LoadContext {
    let stream: StateStream
    let registry: StateRegistry
    var objects: [any Savable] = []
    /// The root's index in `objects`.
    var rootIndex = 0

    init(stream: StateStream, registry: StateRegistry) {
        self.stream = stream
        self.registry = registry
    }

    public func object(id: UInt32) throws -> any Savable {
        guard id >= 1, Int(id) <= objects.count else {
            throw StateError.malformed("reference to object \(id), but the image has \(objects.count)")
        }
        return objects[Int(id) - 1]
    }

    /// Decodes a nested value (an enum payload, say) as `T`.
    public func value<T: SavableValue>(_ state: StateValue, as type: T.Type = T.self) throws -> T {
        try T.decodeState(state, context: self)
    }

    func source(typeIndex: Int, values: [StateValue], expecting name: String?) throws -> LoadSource {
        guard typeIndex >= 0, typeIndex < stream.schemas.count else {
            throw StateError.malformed("unknown schema type \(typeIndex)")
        }
        let schema = stream.schemas[typeIndex]
        if let name, name != schema.name {
            throw StateError.mismatch(expected: name, found: schema.name)
        }
        guard let migration = registry.migrations[schema.name] else {
            return LoadSource(context: self, schema: schema, values: values)
        }
        var record = MigrationRecord(typeName: schema.name, names: schema.names, kinds: schema.kinds,
                                     values: values)
        try migration(&record)
        let migrated = TypeSchema(name: schema.name, isObject: schema.isObject)
        for (name, kind) in zip(record.names, record.kinds) {
            migrated.append(name: name, kind: kind)
        }
        return LoadSource(context: self, schema: migrated, values: record.values)
    }
}

/// Where a `Savable` or `SavableStruct` reads its fields back, by name.
public struct LoadSource {
    let context: LoadContext
    let schema: TypeSchema
    let values: [StateValue]
    private var cursor = 0
    private var consumed: [Bool]
    private var consumedCount = 0

    init(context: LoadContext, schema: TypeSchema, values: [StateValue]) {
        self.context = context
        self.schema = schema
        self.values = values
        self.consumed = Array(repeating: false, count: values.count)
    }

    public var typeName: String { schema.name }

    /// The object the image was saved from (a kernel), loaded before every
    /// other: how an object of an older image that does not name the root
    /// it belongs to (its kernel) finds it.
    public var root: any Savable { context.objects[context.rootIndex] }

    /// Loads a field that every image has.
    public mutating func load<T: SavableValue>(_ name: String) throws -> T {
        guard let index = find(name) else {
            throw StateError(.missingField(type: schema.name, field: name))
        }
        return try decode(index, name)
    }

    /// Loads a field that images from older builds may lack.
    public mutating func load<T: SavableValue>(_ name: String, default defaultValue: @autoclosure () -> T) throws -> T {
        guard let index = find(name) else { return defaultValue() }
        return try decode(index, name)
    }

    /// Drops a field this build no longer has, on purpose: the one way to say
    /// that losing its value is fine.
    public mutating func skip(_ name: String) {
        guard let index = schema.index(of: name), !consumed[index] else { return }
        consumed[index] = true
        consumedCount += 1
    }

    /// Whether the image has this field (to branch on the format of older images).
    public func contains(_ name: String) -> Bool { schema.index(of: name) != nil }

    /// Fails if the image holds fields that the loading type did not read:
    /// they were removed or renamed, and dropping them silently loses state.
    func finish() throws {
        guard consumedCount < values.count else { return }
        for (index, used) in consumed.enumerated() where !used {
            throw StateError(.removedField(type: schema.name, field: schema.names[index]))
        }
    }

    private mutating func find(_ name: String) -> Int? {
        if cursor < schema.names.count, schema.names[cursor] == name {
            cursor += 1
            return cursor - 1
        }
        guard let index = schema.index(of: name) else { return nil }
        cursor = index + 1
        return index
    }

    private mutating func decode<T: SavableValue>(_ index: Int, _ name: String) throws -> T {
        guard index < values.count else {
            throw StateError.malformed("\(schema.name).\(name) has no value")
        }
        if !schema.verified[index] {
            if let kind = schema.kinds[index], !kind.canLoad(as: T.stateKind) {
                throw StateError(.retypedField(type: schema.name, field: name, image: kind.description,
                                               build: T.stateKind.description))
            }
            schema.verified[index] = true
        }
        if !consumed[index] {
            consumed[index] = true
            consumedCount += 1
        }
        do {
            return try T.decodeState(values[index], context: context)
        } catch let error as StateError {
            throw error.within(name)
        }
    }
}

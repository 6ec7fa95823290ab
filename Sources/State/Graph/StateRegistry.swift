/// The savable types a build can restore, by saved name, and the migrations
/// that let it read images from older builds.
public struct StateRegistry {
    private var types: [String: any Savable.Type] = [:]
    private(set) var migrations: [String: (inout MigrationRecord) throws -> Void] = [:]

    public init() {}

    public mutating func register<T: Savable>(_ type: T.Type) {
        types[T.savedTypeName] = type
    }

    /// Rewrites every saved `typeName` object or struct from an image before it is
    /// loaded: renames, removals, and conversions of fields.
    public mutating func registerMigration(for typeName: String,
                                           _ migration: @escaping (inout MigrationRecord) throws -> Void) {
        migrations[typeName] = migration
    }

    public func knows(_ typeName: String) -> Bool { types[typeName] != nil }

    /// Every registered type, by saved name: what a completeness test walks.
    public var registeredTypes: [any Savable.Type] {
        types.sorted { $0.key < $1.key }.map(\.value)
    }

    func make(_ typeName: String) -> (any Savable)? { types[typeName].map { $0.init() } }
}

/// One saved value's fields, as a migration sees and rewrites them.
public struct MigrationRecord {
    public let typeName: String
    var names: [String]
    var kinds: [StateKind?]
    var values: [StateValue]

    public var fieldNames: [String] { names }

    public func value(_ field: String) -> StateValue? {
        names.firstIndex(of: field).map { values[$0] }
    }

    public mutating func rename(_ field: String, to newName: String) {
        if let index = names.firstIndex(of: field) { names[index] = newName }
    }

    public mutating func remove(_ field: String) {
        if let index = names.firstIndex(of: field) {
            names.remove(at: index)
            kinds.remove(at: index)
            values.remove(at: index)
        }
    }

    /// Sets a field's saved value; its kind is then no longer checked.
    public mutating func set(_ field: String, _ value: StateValue) {
        if let index = names.firstIndex(of: field) {
            values[index] = value
            kinds[index] = nil
        } else {
            names.append(field)
            kinds.append(nil)
            values.append(value)
        }
    }
}

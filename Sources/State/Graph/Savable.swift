/// A kernel object with identity: saved once however many references reach it,
/// and restored as one object, so shared state and cycles survive a checkpoint.
///
/// Restoring allocates every object with `init()` before any `load(from:)` runs,
/// which is what lets references form cycles. Fields that cannot be saved
/// (host FDs, locks, caches) are simply not written by `save(to:)`: `afterLoad()`
/// rebuilds them once the whole graph is loaded.
public protocol Savable: AnyObject, SavableValue, DeclaresNotSaved {
    /// The name this type has in images. Never change it once an image was released.
    static var savedTypeName: String { get }
    init()
    func save(to sink: inout SaveSink) throws
    func load(from source: inout LoadSource) throws
    /// Runs after every object in the image is loaded, children before parents.
    func afterLoad() throws
}

extension Savable {
    public func afterLoad() throws {}

    public static var stateKind: StateKind { .object(savedTypeName) }

    public func saveState(to writer: inout StateWriter) throws {
        writer.writeObject(self)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        guard case .object(let id) = state else {
            throw StateError.mismatch(expected: Self.stateKind.description, found: state.kindName)
        }
        let object = try context.object(id: id)
        guard let typed = object as? Self else {
            throw StateError.mismatch(expected: "\(Self.savedTypeName) (\(Self.self))",
                                      found: "\(type(of: object).savedTypeName) (\(type(of: object)))")
        }
        return typed
    }
}

/// A value the State layer can write inline: integers, strings, bytes,
/// collections, optionals, structs, enums, and references to `Savable` objects.
public protocol SavableValue {
    /// The shape recorded in the image's schema, so that a retyped field is
    /// detected at load time instead of being misread.
    static var stateKind: StateKind { get }
    func saveState(to writer: inout StateWriter) throws
    static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self
}

/// A value type with named fields (registers, a VMA, a signal mask set), recorded
/// in the schema like an object so that it can gain fields compatibly.
public protocol SavableStruct: SavableValue, DeclaresNotSaved {
    static var savedTypeName: String { get }
    func save(to sink: inout SaveSink) throws
    init(from source: inout LoadSource) throws
}

extension SavableStruct {
    public static var stateKind: StateKind { .record(savedTypeName) }

    public func saveState(to writer: inout StateWriter) throws {
        try writer.writeRecord(self)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        guard case .record(let typeIndex, let values) = state else {
            throw StateError.mismatch(expected: Self.stateKind.description, found: state.kindName)
        }
        var source = try context.source(typeIndex: typeIndex, values: values, expecting: Self.savedTypeName)
        let value = try Self(from: &source)
        try source.finish()
        return value
    }
}

/// A value saved as another type: for values whose in-memory form is not the
/// form worth keeping (a duration saved as nanoseconds, a set saved as a sorted array).
public protocol SavableByConversion: SavableValue {
    associatedtype SavedForm: SavableValue
    var savedForm: SavedForm { get }
    init(savedForm: SavedForm) throws
}

extension SavableByConversion {
    public static var stateKind: StateKind { SavedForm.stateKind }

    public func saveState(to writer: inout StateWriter) throws {
        try savedForm.saveState(to: &writer)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        try Self(savedForm: SavedForm.decodeState(state, context: context))
    }
}

/// Enums with a raw value are saved as that raw value; an unknown raw value in
/// an image is an error, not a crash.
extension SavableValue where Self: RawRepresentable, RawValue: SavableValue {
    public static var stateKind: StateKind { RawValue.stateKind }

    public func saveState(to writer: inout StateWriter) throws {
        try rawValue.saveState(to: &writer)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        let raw = try RawValue.decodeState(state, context: context)
        guard let value = Self(rawValue: raw) else {
            throw StateError.invalidValue("\(raw) is not a valid \(Self.self)")
        }
        return value
    }
}

/// What a `Savable` or `SavableStruct` does with each stored property that
/// `save(to:)` does not write under the property's own name: saved as another
/// field (`savedAs`), or deliberately not saved (`notSaved`: host resources,
/// locks, caches, what `afterLoad()` rebuilds), each with its reason in a comment.
/// With `save(to:)` this says, in one place per type, what a checkpoint carries;
/// a test walks every registered type's stored properties and fails on one that
/// is accounted for nowhere. In a class hierarchy the base declares `class var`s
/// and a subclass overrides them with `super`'s entries plus its own.
public protocol DeclaresNotSaved {
    static var notSaved: Set<String> { get }
    /// Stored property name to the saved field that carries it.
    static var savedAs: [String: String] { get }
}

extension DeclaresNotSaved {
    public static var notSaved: Set<String> { [] }
    public static var savedAs: [String: String] { [:] }
}

/// Savable forms of the standard library's types. Integers of every width (up
/// to 64 bits) are saved as 64-bit varints, signed or not, and range-checked on
/// load, so an image can never trap a narrowing conversion.

extension SavableValue where Self: FixedWidthInteger {
    public static var stateKind: StateKind { isSigned ? .int : .uint }

    public func saveState(to writer: inout StateWriter) throws {
        if Self.isSigned {
            writer.writeInt(Int64(truncatingIfNeeded: self))
        } else {
            writer.writeUInt(UInt64(truncatingIfNeeded: self))
        }
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        let exact: Self?
        switch state {
        case .int(let value) where isSigned: exact = Self(exactly: value)
        case .uint(let value) where !isSigned: exact = Self(exactly: value)
        default: throw StateError.mismatch(expected: stateKind.description, found: state.kindName)
        }
        guard let exact else {
            throw StateError.invalidValue("\(state.integerDescription) does not fit in \(Self.self)")
        }
        return exact
    }
}

extension Int: SavableValue {}
extension Int8: SavableValue {}
extension Int16: SavableValue {}
extension Int32: SavableValue {}
extension Int64: SavableValue {}
extension UInt: SavableValue {}
extension UInt8: SavableValue {}
extension UInt16: SavableValue {}
extension UInt32: SavableValue {}
extension UInt64: SavableValue {}

extension Bool: SavableValue {
    public static var stateKind: StateKind { .bool }

    public func saveState(to writer: inout StateWriter) throws {
        writer.writeBool(self)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        guard case .bool(let value) = state else {
            throw StateError.mismatch(expected: "bool", found: state.kindName)
        }
        return value
    }
}

extension Double: SavableValue {
    public static var stateKind: StateKind { .double }

    public func saveState(to writer: inout StateWriter) throws {
        writer.writeDouble(self)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        guard case .double(let value) = state else {
            throw StateError.mismatch(expected: "double", found: state.kindName)
        }
        return value
    }
}

extension String: SavableValue {
    public static var stateKind: StateKind { .string }

    public func saveState(to writer: inout StateWriter) throws {
        writer.writeString(self)
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        guard case .string(let value) = state else {
            throw StateError.mismatch(expected: "string", found: state.kindName)
        }
        return value
    }
}

extension Optional: SavableValue where Wrapped: SavableValue {
    public static var stateKind: StateKind { .optional(Wrapped.stateKind) }

    public func saveState(to writer: inout StateWriter) throws {
        switch self {
        case .none: writer.writeNull()
        case .some(let value): try value.saveState(to: &writer)
        }
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        if case .null = state {
            return .none
        } else {
            return .some(try Wrapped.decodeState(state, context: context))
        }
    }
}

/// `[UInt8]` is saved as one run of bytes, every other array element by element.
extension Array: SavableValue where Element: SavableValue {
    public static var stateKind: StateKind {
        Element.self == UInt8.self ? .bytes : .array(Element.stateKind)
    }

    public func saveState(to writer: inout StateWriter) throws {
        // Checked on the type, not with `as?`: an empty array casts to any array type.
        if Element.self == UInt8.self, let bytes = self as? [UInt8] {
            writer.writeBytes(bytes)
        } else {
            try writer.writeArray(self)
        }
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        switch state {
        case .bytes(let bytes) where Element.self == UInt8.self:
            guard let typed = bytes as? [Element] else {
                throw StateError.mismatch(expected: "bytes", found: "bytes")
            }
            return typed
        case .array(let elements) where Element.self != UInt8.self:
            var result: [Element] = []
            result.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                do {
                    result.append(try Element.decodeState(element, context: context))
                } catch let error as StateError {
                    throw error.within("[\(index)]")
                }
            }
            return result
        default:
            throw StateError.mismatch(expected: Self.stateKind.description, found: state.kindName)
        }
    }
}

/// Dictionaries are saved with their keys sorted by encoded form where the key
/// is comparable, so that the same state makes the same image.
extension Dictionary: SavableValue where Key: SavableValue, Value: SavableValue {
    public static var stateKind: StateKind { .map(Key.stateKind, Value.stateKind) }

    public func saveState(to writer: inout StateWriter) throws {
        try writer.writeMap(Self.ordered(self))
    }

    private static func ordered(_ dictionary: Self) -> [(Key, Value)] {
        let entries = dictionary.map { ($0.key, $0.value) }
        switch Key.self {
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt32.Type, is UInt64.Type, is UInt.Type:
            return entries.sorted { Self.integerKey($0.0) < Self.integerKey($1.0) }
        case is String.Type:
            return entries.sorted { ($0.0 as? String ?? "") < ($1.0 as? String ?? "") }
        default:
            return entries
        }
    }

    private static func integerKey(_ key: Key) -> Int128 {
        switch key {
        case let value as Int: Int128(value)
        case let value as Int32: Int128(value)
        case let value as Int64: Int128(value)
        case let value as UInt32: Int128(value)
        case let value as UInt64: Int128(value)
        case let value as UInt: Int128(value)
        default: 0
        }
    }

    public static func decodeState(_ state: StateValue, context: LoadContext) throws -> Self {
        guard case .map(let keys, let values) = state else {
            throw StateError.mismatch(expected: Self.stateKind.description, found: state.kindName)
        }
        var result: [Key: Value] = [:]
        result.reserveCapacity(keys.count)
        for (keyState, valueState) in zip(keys, values) {
            let key = try Key.decodeState(keyState, context: context)
            guard result[key] == nil else {
                throw StateError.invalidValue("duplicate key \(key)")
            }
            do {
                result[key] = try Value.decodeState(valueState, context: context)
            } catch let error as StateError {
                throw error.within("[\(key)]")
            }
        }
        return result
    }
}

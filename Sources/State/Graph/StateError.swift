/// Why an object graph could not be saved or loaded, and where: `path` names
/// the route from the root (`Kernel.tasks[3].fdTable[5]`), filled in as the
/// error travels out of the graph.
public struct StateError: Error, CustomStringConvertible, Equatable {
    public enum Reason: Equatable, Sendable {
        case truncated
        case malformed(String)
        case unsupportedVersion(found: UInt32, supported: [UInt32])
        case badMagic
        case mismatch(expected: String, found: String)
        case invalidValue(String)
        case unknownType(String)
        case missingField(type: String, field: String)
        case removedField(type: String, field: String)
        case retypedField(type: String, field: String, image: String, build: String)
        case schemaViolation(String)
        case unregisteredType(String)
    }

    public var reason: Reason
    public var path: [String]

    public init(_ reason: Reason, path: [String] = []) {
        self.reason = reason
        self.path = path
    }

    static var truncated: StateError { StateError(.truncated) }
    static func malformed(_ message: String) -> StateError { StateError(.malformed(message)) }
    static func mismatch(expected: String, found: String) -> StateError {
        StateError(.mismatch(expected: expected, found: found))
    }
    public static func invalidValue(_ message: String) -> StateError { StateError(.invalidValue(message)) }
    /// A value the running kernel could not have produced, in the field named
    /// (`"name"`, `"entries[5]"`): how a restore refuses a hostile image.
    public static func invalidValue(_ message: String, field: String) -> StateError {
        StateError(.invalidValue(message), path: [field])
    }

    /// The same error one level further from where it happened.
    func within(_ component: String) -> StateError {
        var copy = self
        copy.path.insert(component, at: 0)
        return copy
    }

    public var pathDescription: String {
        var text = ""
        for component in path {
            if component.hasPrefix("[") || text.isEmpty {
                text += component
            } else {
                text += "." + component
            }
        }
        return text
    }

    public var description: String {
        let message: String
        switch reason {
        case .truncated: message = "the state stream ends early (truncated image?)"
        case .malformed(let detail): message = "malformed state stream: \(detail)"
        case .unsupportedVersion(let found, let supported):
            message = "state format version \(found) is not supported; this build reads "
                + supported.map(String.init).joined(separator: ", ")
        case .badMagic: message = "not a runsc state stream (bad magic)"
        case .mismatch(let expected, let found): message = "expected \(expected), found \(found)"
        case .invalidValue(let detail): message = detail
        case .unknownType(let name): message = "the image holds objects of type \(name), which this build does not know"
        case .missingField(let type, let field):
            message = "\(type).\(field) is missing from the image and has no default"
        case .removedField(let type, let field):
            message = "the image has \(type).\(field), which this build no longer has; register a migration"
        case .retypedField(let type, let field, let image, let build):
            message = "\(type).\(field) is \(image) in the image but \(build) in this build; register a migration"
        case .schemaViolation(let detail): message = detail
        case .unregisteredType(let name): message = "type \(name) is not registered as savable"
        }
        return path.isEmpty ? message : "\(pathDescription): \(message)"
    }
}

import FoundationEssentials

/// The OCI runtime state of a container: what `runsc state` prints and what the
/// state directory keeps between commands.
public struct ContainerState: Codable, Sendable, Equatable {
    public var ociVersion: String
    public var id: String
    public var status: Status
    /// The container's init process as the host sees it; absent once stopped or before it exists.
    public var pid: Int32?
    /// The bundle directory, absolute.
    public var bundle: String
    public var annotations: [String: String]?

    public enum Status: String, Codable, Sendable, CaseIterable {
        case creating
        case created
        case running
        case paused
        case stopped
    }

    public init(
        ociVersion: String = Spec.currentVersion, id: String, status: Status, pid: Int32? = nil,
        bundle: String, annotations: [String: String]? = nil
    ) {
        self.ociVersion = ociVersion
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.annotations = annotations
    }

    /// Pretty, sorted JSON: the form `runsc state` prints and the state file holds.
    public func encodedJSON() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var bytes = Array(try encoder.encode(self))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}

/// A validated container ID: safe to use as a directory name under `--root`.
public struct ContainerID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    /// Longer IDs are refused: they would not fit in a file name (NAME_MAX) and runc refuses them too.
    public static let maximumLength = 1024

    public init(_ string: String) throws(ContainerIDError) {
        try Self.validate(string)
        rawValue = string
    }

    public var description: String { rawValue }

    /// Accepts only [A-Za-z0-9_.+-], not "." or "..", 1...1024 characters: nothing that could escape the state directory.
    public static func validate(_ string: String) throws(ContainerIDError) {
        if string.isEmpty { throw ContainerIDError(id: string, reason: "must not be empty") }
        if string.utf8.count > maximumLength {
            throw ContainerIDError(id: String(string.prefix(32)) + "...", reason: "longer than \(maximumLength) characters")
        }
        if string == "." || string == ".." { throw ContainerIDError(id: string, reason: "is reserved") }
        for scalar in string.unicodeScalars where !isAllowed(scalar) {
            throw ContainerIDError(
                id: string, reason: "contains \(describe(scalar)); only letters, digits and _ . + - are allowed")
        }
    }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "+", "-": return true
        default: return false
        }
    }

    private static func describe(_ scalar: Unicode.Scalar) -> String {
        if scalar.isASCII && scalar.value >= 0x21 && scalar.value < 0x7F { return "'\(scalar)'" }
        return "U+" + String(scalar.value, radix: 16, uppercase: true)
    }
}

public struct ContainerIDError: Error, Sendable, Equatable, CustomStringConvertible {
    public var id: String
    public var reason: String

    public var description: String { "invalid container ID \"\(id)\": \(reason)" }
}

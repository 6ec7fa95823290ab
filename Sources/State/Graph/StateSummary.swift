/// What an encoded object graph holds, by type: for `runsc statefile` and for
/// anyone asking why an image is as big as it is. Needs none of the kernel's types.
public struct StateSummary: Codable, Sendable, Equatable {
    public struct TypeEntry: Codable, Sendable, Equatable {
        public var name: String
        /// "object" for savable classes, "struct" for value types kept inline.
        public var role: String
        public var objects: Int
        public var bytes: Int
        public var fields: [String]
    }

    public var formatVersion: UInt32
    public var rootType: String
    public var objectCount: Int
    public var encodedBytes: Int
    public var types: [TypeEntry]

    public init(bytes: [UInt8]) throws {
        let stream = try StateStream(bytes: bytes)
        var counts = Array(repeating: 0, count: stream.typeNames.count)
        var sizes = Array(repeating: 0, count: stream.typeNames.count)
        for object in stream.objects {
            counts[object.typeIndex] += 1
            sizes[object.typeIndex] += object.encodedSize
        }
        formatVersion = stream.version
        rootType = stream.typeNames[stream.objects[Int(stream.rootID) - 1].typeIndex]
        objectCount = stream.objects.count
        encodedBytes = bytes.count
        types = stream.typeNames.indices.map { index in
            TypeEntry(name: stream.typeNames[index],
                      role: stream.isObjectType(index) ? "object" : "struct",
                      objects: counts[index],
                      bytes: sizes[index],
                      fields: stream.fields(ofType: index).map { "\($0.name): \($0.kind)" })
        }
        .sorted { ($0.bytes, $1.name) > ($1.bytes, $0.name) }
    }
}

import State

/// Hostile variants of an image's object graph, for the tests that check a
/// restore refuses or survives each: every leaf value mutated (zero, -1,
/// extremes, off by one; for strings "..", "a/b", "/etc", "", long, NUL; for
/// bytes shorter, longer, flipped; for references nil, a missing object and
/// an object of every other type), and containers emptied or grown.
public struct MutationPlan {
    public struct Mutation: Sendable {
        /// Index of the object in the stream, its values with one mutated, and what was done.
        public let object: Int
        public let values: [StateValue]
        public let label: String
    }

    public let stream: StateStream
    public private(set) var mutations: [Mutation] = []
    /// Leaf values (and containers) mutated.
    public private(set) var fieldCount = 0
    /// For "a reference to an object of another type": one object of each type.
    private let sampleByType: [Int: UInt32]

    public init(stream: StateStream) {
        self.stream = stream
        var samples: [Int: UInt32] = [:]
        for (index, object) in stream.objects.enumerated() where samples[object.typeIndex] == nil {
            samples[object.typeIndex] = UInt32(index + 1)
        }
        sampleByType = samples
        for (index, object) in stream.objects.enumerated() {
            let typeName = stream.typeNames[object.typeIndex]
            let names = stream.fieldNames(ofType: object.typeIndex)
            for (field, value) in object.values.enumerated() {
                let label = "\(typeName)#\(index + 1).\(names[field])"
                for (variant, text) in variants(of: value, label: label) {
                    var values = object.values
                    values[field] = variant
                    mutations.append(Mutation(object: index, values: values, label: text))
                }
            }
        }
    }

    /// The stream re-encoded with `mutation` applied.
    public func encoded(_ mutation: Mutation) throws -> [UInt8] {
        try stream.encoded { $0 == mutation.object ? mutation.values : nil }
    }

    /// The value's mutations, and those of everything inside it.
    private mutating func variants(of value: StateValue, label: String) -> [(StateValue, String)] {
        var result: [(StateValue, String)] = []
        func add(_ variant: StateValue, _ what: String) {
            if variant != value { result.append((variant, "\(label) = \(what)")) }
        }
        switch value {
        case .null:
            fieldCount += 1
            add(.int(0), "0")
            add(.object(1), "the root object")
        case .bool(let flag):
            fieldCount += 1
            add(.bool(!flag), "\(!flag)")
        case .int(let number):
            fieldCount += 1
            for candidate in [0, -1, Int64.max, Int64.min, Int64(Int32.max), Int64(Int32.min)] {
                add(.int(candidate), "\(candidate)")
            }
            if number < .max { add(.int(number + 1), "\(number + 1)") }
            if number > .min { add(.int(number - 1), "\(number - 1)") }
        case .uint(let number):
            fieldCount += 1
            for candidate in [0, UInt64.max, 1 << 63, UInt64(UInt32.max), 1 << 47] {
                add(.uint(candidate), "\(candidate)")
            }
            if number < .max { add(.uint(number + 1), "\(number + 1)") }
            if number > 0 { add(.uint(number - 1), "\(number - 1)") }
        case .double:
            fieldCount += 1
            for candidate in [0, -1, Double.nan, Double.infinity] { add(.double(candidate), "\(candidate)") }
        case .string(let text):
            fieldCount += 1
            let hostile = ["", ".", "..", "../..", "a/b", "/etc", "/", "a\u{0}b", String(repeating: "a", count: 256),
                           String(repeating: "a/", count: 2100), text + "x"]
            for candidate in hostile { add(.string(candidate), "\"\(candidate.prefix(12))\"(\(candidate.utf8.count))") }
        case .bytes(let data):
            fieldCount += 1
            add(.bytes([]), "no bytes")
            if !data.isEmpty {
                add(.bytes(Array(data.dropLast())), "one byte fewer")
                add(.bytes(data.map { ~$0 }), "every bit flipped")
            }
            add(.bytes(data + [0]), "one byte more")
            add(.bytes(data + [UInt8](repeating: 0xff, count: 1 << 16)), "64 KiB more")
        case .object(let id):
            fieldCount += 1
            add(.null, "nil")
            add(.object(UInt32(stream.objects.count + 1)), "a missing object")
            let ownType = Int(id) >= 1 && Int(id) <= stream.objects.count ? stream.objects[Int(id) - 1].typeIndex : -1
            for (type, sample) in sampleByType.sorted(by: { $0.key < $1.key }) where type != ownType {
                add(.object(sample), "a \(stream.typeNames[type])")
            }
        case .array(let elements):
            fieldCount += 1
            add(.array([]), "[]")
            if !elements.isEmpty {
                add(.array(Array(elements.dropLast())), "one element fewer")
                add(.array(elements + [elements[0]]), "first element twice")
            }
            for (index, element) in elements.enumerated() {
                for (variant, text) in variants(of: element, label: "\(label)[\(index)]") {
                    var copy = elements
                    copy[index] = variant
                    result.append((.array(copy), text))
                }
            }
        case .map(let keys, let values):
            fieldCount += 1
            add(.map(keys: [], values: []), "[:]")
            for (index, key) in keys.enumerated() {
                let name = "\(label)[\(index)]"
                for (variant, text) in variants(of: key, label: name + ".key") {
                    var copy = keys
                    copy[index] = variant
                    result.append((.map(keys: copy, values: values), text))
                }
                for (variant, text) in variants(of: values[index], label: name) {
                    var copy = values
                    copy[index] = variant
                    result.append((.map(keys: keys, values: copy), text))
                }
            }
        case .record(let typeIndex, let fields):
            let names = stream.fieldNames(ofType: typeIndex)
            for (index, field) in fields.enumerated() {
                let name = index < names.count ? names[index] : "?"
                for (variant, text) in variants(of: field, label: "\(label).\(name)") {
                    var copy = fields
                    copy[index] = variant
                    result.append((.record(typeIndex: typeIndex, values: copy), text))
                }
            }
        case .enumCase(let name, let payload):
            fieldCount += 1
            add(.enumCase("bogus", payload: payload), "case bogus")
            if !payload.isEmpty { add(.enumCase(name, payload: []), "\(name) without payload") }
            for (index, element) in payload.enumerated() {
                for (variant, text) in variants(of: element, label: "\(label).\(name).\(index)") {
                    var copy = payload
                    copy[index] = variant
                    result.append((.enumCase(name, payload: copy), text))
                }
            }
        }
        return result
    }
}

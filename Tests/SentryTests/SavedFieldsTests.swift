import State
import Testing
@testable import Sentry

/// Every stored property of every savable kernel type is either written by its
/// `save(to:)` or listed in its `notSaved`: a field added without deciding
/// whether a checkpoint carries it fails here, naming the type and the property.
@Suite struct SavedFields {
    /// Holds one struct so that the encoder records the struct's schema.
    final class StructHolder: Savable {
        static let savedTypeName = "test.StructHolder"
        var value: (any SavableStruct)?
        init() {}
        init(_ value: any SavableStruct) { self.value = value }
        func save(to sink: inout SaveSink) throws {
            if let value { try sink.save("value", value) }
        }
        func load(from source: inout LoadSource) throws {}
    }

    /// Structs a freshly made kernel may not hold, with a sample of each.
    static var structSamples: [any SavableStruct] { [
        VMA(start: 0, end: 0x1000, protection: .read, shared: false),
        PrivatePages(start: 0, end: 0x1000, offset: 0),
        FDTable.Entry(file: FileDescription(), closeOnExec: false),
        FileTime(seconds: 0, nanoseconds: 0),
        VirtualPath(mount: Mount(), dentry: Dentry()),
        SignalAction(),
        SignalInfo(signal: .user1, code: 0),
        SignalQueue(),
        Limits(),
        SchedulingAttributes(),
        IPCPermissions(),
        QueuedMessage(type: 1, text: []),
        SeccompFilter(defaultAction: .allow, rules: [SeccompRule(number: 83, action: .errno(1))]),
    ] + [SeccompCondition(argument: 0, op: .equal, value: 1)].compactMap { $0 }
      + [SeccompProgram([SeccompProgram.Instruction(code: LinuxBPF.BPF_RET, k: 0)])].compactMap { $0 } }

    @Test func everyStoredPropertyIsSavedOrDeclaredNotSaved() throws {
        var problems: [String] = []
        var checkedStructs: Set<String> = []
        let types = SentryStateTypes.registry.registeredTypes
        let host = try HostTree()
        #expect(types.count >= 40)
        for type in types {
            let object = try Self.instance(of: type, host: host)
            let saved: Set<String>
            do {
                saved = try Self.savedFields(of: object, named: type.savedTypeName)
            } catch {
                problems.append("\(type.savedTypeName): a fresh one does not save: \(error)")
                continue
            }
            problems += Self.unaccounted(in: object, typeName: type.savedTypeName, saved: saved)
        }
        // A running kernel holds the structs images carry: each one its graph reaches is
        // checked, and a struct type its image records that none of them covered fails.
        let (kernel, _) = try KernelState().makeKernel()
        for value in Self.reachableStructs(from: kernel) + Self.structSamples {
            problems += try Self.check(value, checked: &checkedStructs)
        }
        let image = try StateSummary(bytes: StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry))
        for entry in image.types where entry.role == "struct" && !checkedStructs.contains(entry.name) {
            problems.append("\(entry.name) is in a kernel's image but has no value here to check: add a sample")
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    /// A fresh object of `type`, or, for a type that saves only what it was made
    /// from, one made as the kernel makes it.
    static func instance(of type: any Savable.Type, host: HostTree) throws -> any Savable {
        if ObjectIdentifier(type) == ObjectIdentifier(HostFile.self) { // saves the host file it reopens
            let (vfs, context) = try host.makeVFS(readOnly: true)
            return try vfs.open("/data/greeting", from: context.root, context: context, flags: LinuxFile.readOnly,
                                mode: 0, umask: 0)
        }
        return type.init()
    }

    static func check(_ value: any SavableStruct, checked: inout Set<String>) throws -> [String] {
        let name = type(of: value).savedTypeName
        guard checked.insert(name).inserted else { return [] }
        let saved = try savedFields(of: StructHolder(value), named: name)
        return unaccounted(in: value, typeName: name, saved: saved)
    }

    /// The field names `save(to:)` wrote for `typeName`, as the encoder's schema records them.
    static func savedFields(of root: some Savable, named typeName: String) throws -> Set<String> {
        let summary = try StateSummary(bytes: StateEncoder.encode(root: root))
        let fields = summary.types.first { $0.name == typeName }?.fields ?? []
        return Set(fields.map { String($0.prefix { $0 != ":" }) }) // "name: kind"

    }

    /// "type.property is neither saved nor declared not saved" for each stored property,
    /// through every superclass, that is in neither set.
    static func unaccounted(in subject: Any, typeName: String, saved: Set<String>) -> [String] {
        var problems: [String] = []
        var notSaved: Set<String> = []
        var savedAs: [String: String] = [:]
        var levels: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: subject)
        while let level = mirror {
            levels.append(level)
            if let declaring = level.subjectType as? any DeclaresNotSaved.Type {
                notSaved.formUnion(declaring.notSaved)
                savedAs.merge(declaring.savedAs) { current, _ in current }
            }
            mirror = level.superclassMirror
        }
        for level in levels {
            for child in level.children {
                guard let label = child.label.map(propertyName) else { continue }
                if !saved.contains(savedAs[label] ?? label), !notSaved.contains(label) {
                    problems.append("\(typeName).\(label) is neither saved nor declared not saved")
                }
            }
        }
        for name in notSaved.sorted() where saved.contains(name) {
            problems.append("\(typeName).\(name) is saved and also declared not saved")
        }
        for (property, field) in savedAs.sorted(by: { $0.key < $1.key }) where !saved.contains(field) {
            problems.append("\(typeName).\(property) is declared saved as \"\(field)\", which save(to:) does not write")
        }
        return problems
    }

    /// A stored property's name from its Mirror label: lazy storage and
    /// property-wrapper storage carry a prefix.
    static func propertyName(_ label: String) -> String {
        for prefix in ["$__lazy_storage_$_", "_"] where label.hasPrefix(prefix) && label.count > prefix.count {
            return String(label.dropFirst(prefix.count))
        }
        return label
    }

    /// Every struct value reachable from `root` through stored properties,
    /// collections, optionals and other objects, each object visited once.
    static func reachableStructs(from root: Any) -> [any SavableStruct] {
        var found: [any SavableStruct] = []
        var visited: Set<ObjectIdentifier> = []
        var pending: [Any] = [root]
        while let value = pending.popLast() {
            if value is [UInt8] { continue } // bytes hold no structs
            if let record = value as? any SavableStruct { found.append(record) }
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .class, !visited.insert(ObjectIdentifier(value as AnyObject)).inserted { continue }
            var level: Mirror? = mirror
            while let current = level {
                pending += current.children.map(\.value)
                level = current.superclassMirror
            }
        }
        return found
    }
}

import Testing
@testable import State

// Three builds' idea of one saved type, "test.Widget".

final class WidgetV1: Savable {
    static let savedTypeName = "test.Widget"
    var size: Int64 = 0
    var label = ""

    func save(to sink: inout SaveSink) throws {
        try sink.save("size", size)
        try sink.save("label", label)
    }

    func load(from source: inout LoadSource) throws {
        size = try source.load("size")
        label = try source.load("label")
    }
}

/// Adds `color` with a default.
final class WidgetV2: Savable {
    static let savedTypeName = "test.Widget"
    var size: Int64 = 0
    var label = ""
    var color = "plain"

    func save(to sink: inout SaveSink) throws {
        try sink.save("size", size)
        try sink.save("label", label)
        try sink.save("color", color)
    }

    func load(from source: inout LoadSource) throws {
        size = try source.load("size")
        label = try source.load("label")
        color = try source.load("color", default: "plain")
    }
}

/// Retypes `size` to a string and renames `label` to `title`.
final class WidgetV3: Savable {
    static let savedTypeName = "test.Widget"
    var size = ""
    var title = ""

    func save(to sink: inout SaveSink) throws {
        try sink.save("size", size)
        try sink.save("title", title)
    }

    func load(from source: inout LoadSource) throws {
        size = try source.load("size")
        title = try source.load("title")
    }
}

/// A field that used to be required and became optional.
final class WidgetV4: Savable {
    static let savedTypeName = "test.Widget"
    var size: Int64?
    var label = ""

    func save(to sink: inout SaveSink) throws {
        try sink.save("size", size)
        try sink.save("label", label)
    }

    func load(from source: inout LoadSource) throws {
        size = try source.load("size")
        label = try source.load("label")
    }
}

func registry<T: Savable>(_ type: T.Type) -> StateRegistry {
    var registry = StateRegistry()
    registry.register(type)
    return registry
}

@Suite struct SchemaEvolution {
    let v1Image: [UInt8] = {
        let widget = WidgetV1()
        widget.size = 42
        widget.label = "old"
        return (try? StateEncoder.encode(root: widget)) ?? []
    }()

    @Test func aFieldAddedWithADefaultLoadsFromAnOlderImage() throws {
        let widget = try StateDecoder(registry: registry(WidgetV2.self)).decode(v1Image, as: WidgetV2.self)
        #expect(widget.size == 42)
        #expect(widget.label == "old")
        #expect(widget.color == "plain")
    }

    @Test func aFieldTheBuildNoLongerHasIsAnErrorNamingTypeAndField() throws {
        let newer = WidgetV2()
        newer.color = "red"
        let image = try StateEncoder.encode(root: newer)
        do {
            _ = try StateDecoder(registry: registry(WidgetV1.self)).decode(image)
            Issue.record("a removed field was dropped silently")
        } catch let error as StateError {
            #expect(error.reason == .removedField(type: "test.Widget", field: "color"))
            #expect(error.description.contains("test.Widget.color"))
        }
    }

    @Test func aRetypedFieldIsAnErrorNamingTypeFieldAndKinds() throws {
        do {
            _ = try StateDecoder(registry: registry(WidgetV3.self)).decode(v1Image)
            Issue.record("a retyped field loaded")
        } catch let error as StateError {
            #expect(error.reason == .retypedField(type: "test.Widget", field: "size", image: "int", build: "string"))
        }
    }

    @Test func aRegisteredMigrationRenamesAndConvertsFields() throws {
        var migrating = registry(WidgetV3.self)
        migrating.registerMigration(for: "test.Widget") { record in
            if case .int(let size)? = record.value("size") {
                record.set("size", .string("\(size) cm"))
            }
            record.rename("label", to: "title")
        }
        let widget = try StateDecoder(registry: migrating).decode(v1Image, as: WidgetV3.self)
        #expect(widget.size == "42 cm")
        #expect(widget.title == "old")
    }

    @Test func aFieldThatBecameOptionalLoadsFromAnOlderImage() throws {
        let widget = try StateDecoder(registry: registry(WidgetV4.self)).decode(v1Image, as: WidgetV4.self)
        #expect(widget.size == 42)
    }

    @Test func aMissingFieldWithoutADefaultIsAnError() throws {
        var stripping = registry(WidgetV1.self)
        stripping.registerMigration(for: "test.Widget") { $0.remove("label") }
        do {
            _ = try StateDecoder(registry: stripping).decode(v1Image)
            Issue.record("a missing field loaded")
        } catch let error as StateError {
            #expect(error.reason == .missingField(type: "test.Widget", field: "label"))
        }
    }

    @Test func aValueOutOfRangeNamesItsPath() throws {
        let kernel = makeKernel()
        kernel.counters["read"] = 300
        let image = try StateEncoder.encode(root: kernel)
        do {
            var narrow = registry(NarrowKernel.self)
            narrow.register(Task.self)
            narrow.register(FDTable.self)
            _ = try StateDecoder(registry: narrow).decode(image)
            Issue.record("an out-of-range value loaded")
        } catch let error as StateError {
            #expect(error.pathDescription == "test.Kernel.counters[read]")
            #expect(error.description.contains("300 does not fit in UInt8"))
        }
    }

    @Test func aBadValueDeepInTheGraphNamesItsPathFromTheRoot() throws {
        let kernel = makeKernel()
        kernel.tasks[2].fdTable.level = 1 << 40
        let image = try StateEncoder.encode(root: kernel)
        var corrupting = testRegistry()
        corrupting.registerMigration(for: "test.FDTable") { record in
            if record.value("level") == .int(1 << 40) { record.set("level", .string("x")) }
        }
        do {
            _ = try StateDecoder(registry: corrupting).decode(image)
            Issue.record("a bad value loaded")
        } catch let error as StateError {
            #expect(error.pathDescription == "test.Kernel.tasks[2].fdTable.level")
            #expect(error.description.hasSuffix("expected int, found string"))
        }
    }
}

/// The kernel of a build whose counters are narrower and which dropped the rest.
final class NarrowKernel: Savable {
    static let savedTypeName = "test.Kernel"
    var counters: [String: UInt8] = [:]

    func save(to sink: inout SaveSink) throws {
        try sink.save("counters", counters)
    }

    func load(from source: inout LoadSource) throws {
        counters = try source.load("counters")
        for field in ["tasks", "hostname", "note"] {
            source.skip(field)
        }
    }
}

import Foundation
import ImageMutation
import State
import Testing
@testable import Sentry

/// Hostile images: every field of the golden images' object graphs is
/// mutated (zero, -1, extremes, off by one; for strings "..", "a/b", "/etc",
/// "", long, NUL; for references nil and an object of another type), the
/// graph re-encoded and decoded as a restore decodes it. Each mutation must
/// be refused with an error naming a field, or load into a kernel: never
/// trap (a trap would end this test process) and never hang.
///
/// `swift test` runs every `RUNSC_MUTATION_STRIDE`-th mutation (default 7,
/// a different offset per image); `scripts/image-mutations` runs them all.
@Suite struct ImageMutations {
    static var snapshots: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../fixtures/snapshots").standardized.path
    }

    static var images: [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: snapshots)) ?? []
        return entries.filter { $0.hasSuffix("-v1") || $0.hasSuffix("-v2") }.sorted()
    }

    static var stride: Int {
        ProcessInfo.processInfo.environment["RUNSC_MUTATION_STRIDE"].flatMap(Int.init).map { max($0, 1) } ?? 7
    }

    @Test(arguments: images)
    func everyMutatedFieldIsRefusedByNameOrLoads(image: String) throws {
        let bytes = try ImageReader(directory: Self.snapshots + "/" + image).readState()
        let stream = try StateStream(bytes: bytes)
        _ = try #require(try Self.decode(bytes).kernel, "the golden image itself must load")
        let plan = MutationPlan(stream: stream)
        let mutations = plan.mutations
        var tally = Tally()
        // A refusal whose path is an object's own path named no field of it.
        let objectPaths = Set((1...stream.objects.count).map { stream.path(to: UInt32($0)) })
        let offset = image.utf8.reduce(0) { $0 + Int($1) } % Self.stride
        for (index, mutation) in mutations.enumerated() where index % Self.stride == offset {
            let mutated = try plan.encoded(mutation)
            let outcome = Self.decode(mutated)
            switch outcome.error {
            case nil:
                tally.loaded += 1
                tally.loadedByType[String(mutation.label.prefix { $0 != "#" }), default: 0] += 1
            case let error as StateError:
                if case .invalidValue = error.reason {
                    tally.refusedByValidation += 1
                } else {
                    tally.refusedAtDecode += 1
                }
                #expect(!error.path.isEmpty || Self.isStreamLevel(error),
                        "\(mutation.label): refused without naming a field: \(error)")
                if case .invalidValue = error.reason {
                    // A check's own path: the object's, then the field it names.
                    #expect(!objectPaths.contains(error.path), "\(mutation.label): a check named no field: \(error)")
                }
            case let error?:
                Issue.record("\(mutation.label): not a StateError: \(error)")
            }
        }
        print("image mutations \(image): \(mutations.count) mutations of \(plan.fieldCount) "
            + "fields, \(tally.total) run (every \(Self.stride)th): refused at decode \(tally.refusedAtDecode), "
            + "refused by validation \(tally.refusedByValidation), loaded \(tally.loaded) ("
            + tally.loadedByType.sorted { $0.value > $1.value }.prefix(8).map { "\($0.key) \($0.value)" }
                .joined(separator: ", ") + ", ...)")
        #expect(tally.total > 0)
        #expect(tally.refusedByValidation > 0, "no mutation was refused by the restore's checks")
    }

    struct Tally {
        var refusedAtDecode = 0
        var refusedByValidation = 0
        var loaded = 0
        /// Loaded mutations by the type of the object mutated: where values are accepted as they come.
        var loadedByType: [String: Int] = [:]
        var total: Int { refusedAtDecode + refusedByValidation + loaded }
    }

    /// Errors about the stream as a whole (a reference to no object, a
    /// malformed encoding) name no field.
    static func isStreamLevel(_ error: StateError) -> Bool {
        switch error.reason {
        case .malformed, .truncated, .badMagic: true
        default: false
        }
    }

    /// Decodes as the restore does; a loaded kernel's memory file is let go
    /// at once (its graph has cycles, so it would outlive the test).
    static func decode(_ bytes: [UInt8]) -> (kernel: Kernel?, error: (any Error)?) {
        do {
            let kernel = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: Kernel.self)
            kernel.memoryFile.release()
            return (kernel, nil)
        } catch {
            return (nil, error)
        }
    }
}

/// Single edits of a golden image that the kernel could not have made, each
/// refused with the field's path and what is wrong with it.
@Suite struct ImageValueChecks {
    static let cases: [(type: String, path: [String], value: StateValue, expected: [String])] = [
        ("sentry.Task", ["registers", "cs"], .uint(0x23), ["registers.cs", "not the 64-bit user code selector"]),
        ("sentry.Task", ["registers", "fsBase"], .uint(1 << 63), ["registers.fsBase", "not a user address"]),
        ("sentry.Task", ["id"], .int(0), ["tasks[1].id", "is not a PID"]),
        ("sentry.Task", ["signalMask"], .uint(1 << 8), ["signalMask", "SIGKILL"]),
        ("sentry.ThreadGroup", ["limits", "soft", "[7]"], .uint(.max), ["limits.soft[7]", "above the hard limit"]),
        ("sentry.SignalHandlers", ["actions", "[8]", "handler"], .uint(0x401000), ["actions[8]", "cannot have a handler"]),
        ("sentry.MemoryManager", ["vmas", "[0]", "start"], .uint(0x1000), ["vmas[0]", "outside the user address space"]),
        ("sentry.MemoryManager", ["brk"], .uint(0), ["brk", "below its start"]),
        ("vfs.FDTable", ["entries", "#0"], .int(2_000_000), ["entries[2000000]", "outside 0..<nr_open"]),
        ("vfs.Mount", ["target"], .string("/proc/../.."), ["target", "not a clean absolute path"]),
        ("sentry.PIDNamespace", ["nextID"], .int(-5), ["nextID", "is not a PID"]),
        ("sentry.UTSNamespace", ["hostName"], .string(String(repeating: "h", count: 65)), ["hostName", "64 bytes"]),
    ]

    @Test(arguments: cases.indices)
    func aValueTheKernelCouldNotHaveMadeIsRefusedByName(index: Int) throws {
        let (type, path, value, expected) = Self.cases[index]
        let bytes = try ImageReader(directory: ImageMutations.snapshots + "/counter-v2").readState()
        let stream = try StateStream(bytes: bytes)
        let object = try #require(stream.objects.indices.first { stream.typeNames[stream.objects[$0].typeIndex] == type })
        let names = stream.fieldNames(ofType: stream.objects[object].typeIndex)
        let field = try #require(names.firstIndex(of: path[0]), "\(type) has no \(path[0])")
        var values = stream.objects[object].values
        values[field] = try Self.setting(Array(path.dropFirst()), in: values[field], to: value, stream: stream)
        let edited = try stream.encoded { $0 == object ? values : nil }
        let error = try #require(ImageMutations.decode(edited).error as? StateError, "\(type).\(path) = \(value) loaded")
        for text in expected {
            #expect(error.description.contains(text), "\(error)")
        }
    }

    /// `value` with the part at `path` (record field names, `[i]` array
    /// indices, `#i` for the i-th map key) replaced.
    static func setting(_ path: [String], in value: StateValue, to replacement: StateValue,
                        stream: StateStream) throws -> StateValue {
        guard let step = path.first else { return replacement }
        let rest = Array(path.dropFirst())
        switch value {
        case .record(let typeIndex, var fields):
            let index = try #require(stream.fieldNames(ofType: typeIndex).firstIndex(of: step))
            fields[index] = try setting(rest, in: fields[index], to: replacement, stream: stream)
            return .record(typeIndex: typeIndex, values: fields)
        case .array(var elements):
            let index = try #require(Int(step.dropFirst().dropLast()))
            elements[index] = try setting(rest, in: elements[index], to: replacement, stream: stream)
            return .array(elements)
        case .map(var keys, let values):
            let index = try #require(Int(step.dropFirst()))
            keys[index] = try setting(rest, in: keys[index], to: replacement, stream: stream)
            return .map(keys: keys, values: values)
        default:
            throw SyscallError.einval
        }
    }
}

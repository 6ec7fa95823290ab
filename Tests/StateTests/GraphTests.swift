import Testing
@testable import State

// A miniature kernel: enough shapes (shared objects, cycles, structs, enums,
// maps, bytes, not-saved fields) to exercise the object graph encoder.

struct Registers: SavableStruct, Equatable {
    static let savedTypeName = "test.Registers"
    var rip: UInt64 = 0
    var rsp: UInt64 = 0
    var fpState: [UInt8] = []

    func save(to sink: inout SaveSink) throws {
        try sink.save("rip", rip)
        try sink.save("rsp", rsp)
        try sink.save("fpState", fpState)
    }

    init(rip: UInt64, rsp: UInt64, fpState: [UInt8]) {
        self.rip = rip
        self.rsp = rsp
        self.fpState = fpState
    }

    init(from source: inout LoadSource) throws {
        rip = try source.load("rip")
        rsp = try source.load("rsp")
        fpState = try source.load("fpState")
    }
}

enum RunState: SavableValue, Equatable {
    case running
    case stopped(signal: Int32)
    case exited(status: Int32, core: Bool)

    static let stateKind = StateKind.enumeration("test.RunState")

    func saveState(to writer: inout StateWriter) throws {
        switch self {
        case .running: try writer.writeEnumCase("running")
        case .stopped(let signal): try writer.writeEnumCase("stopped", signal)
        case .exited(let status, let core): try writer.writeEnumCase("exited", status, core)
        }
    }

    static func decodeState(_ state: StateValue, context: LoadContext) throws -> RunState {
        switch state {
        case .enumCase("running", let payload) where payload.isEmpty: return .running
        case .enumCase("stopped", let payload) where payload.count == 1:
            return .stopped(signal: try context.value(payload[0]))
        case .enumCase("exited", let payload) where payload.count == 2:
            return .exited(status: try context.value(payload[0]), core: try context.value(payload[1]))
        default: throw StateError.invalidValue("bad RunState \(state)")
        }
    }
}

enum Policy: String, SavableValue { case fifo, roundRobin }

final class FDTable: Savable {
    static let savedTypeName = "test.FDTable"
    var descriptors: [Int32: String] = [:]
    var level: Int64 = 0

    func save(to sink: inout SaveSink) throws {
        try sink.save("descriptors", descriptors)
        try sink.save("level", level)
    }

    func load(from source: inout LoadSource) throws {
        descriptors = try source.load("descriptors")
        level = try source.load("level")
    }
}

final class Task: Savable {
    static let savedTypeName = "test.Task"
    var tid: Int32 = 0
    var parent: Task?
    var children: [Task] = []
    var fdTable = FDTable()
    var registers = Registers(rip: 0, rsp: 0, fpState: [])
    var state = RunState.running
    var policy = Policy.fifo
    /// Not saved: rebuilt from `tid` after load, as a host resource would be.
    var hostHandle = -1

    func save(to sink: inout SaveSink) throws {
        try sink.save("tid", tid)
        try sink.save("parent", parent)
        try sink.save("children", children)
        try sink.save("fdTable", fdTable)
        try sink.save("registers", registers)
        try sink.save("state", state)
        try sink.save("policy", policy)
    }

    func load(from source: inout LoadSource) throws {
        tid = try source.load("tid")
        parent = try source.load("parent")
        children = try source.load("children")
        fdTable = try source.load("fdTable")
        registers = try source.load("registers")
        state = try source.load("state")
        policy = try source.load("policy")
    }

    func afterLoad() throws {
        hostHandle = Int(tid) * 10
    }
}

final class Kernel: Savable {
    static let savedTypeName = "test.Kernel"
    var tasks: [Task] = []
    var hostname = ""
    var counters: [String: UInt64] = [:]
    var note: String?

    func save(to sink: inout SaveSink) throws {
        try sink.save("tasks", tasks)
        try sink.save("hostname", hostname)
        try sink.save("counters", counters)
        try sink.save("note", note)
    }

    func load(from source: inout LoadSource) throws {
        tasks = try source.load("tasks")
        hostname = try source.load("hostname")
        counters = try source.load("counters")
        note = try source.load("note")
    }
}

func testRegistry() -> StateRegistry {
    var registry = StateRegistry()
    registry.register(Kernel.self)
    registry.register(Task.self)
    registry.register(FDTable.self)
    return registry
}

/// init with a shared FD table between tasks 1 and 2, and a parent/child cycle.
func makeKernel() -> Kernel {
    let kernel = Kernel()
    kernel.hostname = "sandbox"
    kernel.counters = ["read": 12, "write": 7]
    let shared = FDTable()
    shared.descriptors = [0: "stdin", 1: "stdout", 2: "stderr"]
    let initTask = Task()
    initTask.tid = 1
    initTask.fdTable = shared
    initTask.registers = Registers(rip: 0x401000, rsp: 0x7fff_0000, fpState: [1, 2, 3, 0, 255])
    for tid in Int32(2)...4 {
        let child = Task()
        child.tid = tid
        child.parent = initTask
        child.state = tid == 3 ? .stopped(signal: 19) : .exited(status: tid, core: tid == 4)
        child.policy = .roundRobin
        child.fdTable = tid == 2 ? shared : FDTable()
        initTask.children.append(child)
    }
    kernel.tasks = [initTask] + initTask.children
    return kernel
}

@Suite struct GraphRoundTrip {
    @Test func restoredGraphKeepsValuesIdentityAndCycles() throws {
        let bytes = try StateEncoder.encode(root: makeKernel(), registry: testRegistry())
        let kernel = try StateDecoder(registry: testRegistry()).decode(bytes, as: Kernel.self)

        #expect(kernel.hostname == "sandbox")
        #expect(kernel.counters == ["read": 12, "write": 7])
        #expect(kernel.note == nil)
        #expect(kernel.tasks.map(\.tid) == [1, 2, 3, 4])
        let initTask = kernel.tasks[0]
        #expect(initTask.registers == Registers(rip: 0x401000, rsp: 0x7fff_0000, fpState: [1, 2, 3, 0, 255]))
        #expect(initTask.children.count == 3)
        // Identity: the children array and kernel.tasks hold the same objects.
        for (child, task) in zip(initTask.children, kernel.tasks.dropFirst()) {
            #expect(child === task)
            #expect(child.parent === initTask)
        }
        #expect(kernel.tasks[1].fdTable === initTask.fdTable)
        #expect(kernel.tasks[2].fdTable !== initTask.fdTable)
        #expect(initTask.fdTable.descriptors[1] == "stdout")
        #expect(kernel.tasks[2].state == .stopped(signal: 19))
        #expect(kernel.tasks[3].state == .exited(status: 4, core: true))
        #expect(kernel.tasks[3].policy == .roundRobin)
    }

    @Test func afterLoadRebuildsFieldsThatAreNotSaved() throws {
        let bytes = try StateEncoder.encode(root: makeKernel())
        let kernel = try StateDecoder(registry: testRegistry()).decode(bytes, as: Kernel.self)
        #expect(kernel.tasks.map(\.hostHandle) == [10, 20, 30, 40])
    }

    @Test func sameStateMakesTheSameImage() throws {
        let first = try StateEncoder.encode(root: makeKernel())
        let second = try StateEncoder.encode(root: makeKernel())
        #expect(first == second)
    }

    @Test func aSelfCycleAndADeepChainRoundTrip() throws {
        let lone = Task()
        lone.tid = 9
        lone.parent = lone
        let decoded = try StateDecoder(registry: testRegistry()).decode(StateEncoder.encode(root: lone), as: Task.self)
        #expect(decoded.parent === decoded)

        // A chain far deeper than any call stack could recurse.
        let head = Task()
        var tail = head
        for tid in 1...200_000 {
            let next = Task()
            next.tid = Int32(tid)
            tail.children = [next]
            tail = next
        }
        let chain = try StateDecoder(registry: testRegistry()).decode(StateEncoder.encode(root: head), as: Task.self)
        var depth = 0
        var cursor = chain
        while let next = cursor.children.first {
            cursor = next
            depth += 1
        }
        #expect(depth == 200_000)
        #expect(cursor.tid == 200_000)
        unlink(head)
        unlink(chain)
    }

    /// Releasing a long chain would recurse once per link: take it apart iteratively.
    private func unlink(_ head: Task) {
        var next = head.children.first
        head.children = []
        while let current = next {
            next = current.children.first
            current.children = []
        }
    }

    @Test func anUnregisteredTypeIsRefusedAtSaveNamingThePath() throws {
        var registry = StateRegistry()
        registry.register(Kernel.self)
        registry.register(Task.self)
        do {
            _ = try StateEncoder.encode(root: makeKernel(), registry: registry)
            Issue.record("encoding succeeded with test.FDTable unregistered")
        } catch let error as StateError {
            #expect(error.reason == .unregisteredType("test.FDTable"))
            #expect(error.pathDescription == "test.Kernel.tasks.fdTable")
        }
    }

    @Test func anUnknownTypeIsRefusedAtLoad() throws {
        let bytes = try StateEncoder.encode(root: makeKernel())
        var registry = StateRegistry()
        registry.register(Kernel.self)
        registry.register(Task.self)
        #expect(throws: StateError.self) { try StateDecoder(registry: registry).decode(bytes) }
        do {
            _ = try StateDecoder(registry: registry).decode(bytes)
        } catch let error as StateError {
            #expect(error.reason == .unknownType("test.FDTable"))
            #expect(error.description.contains("test.Kernel.tasks[0].fdTable"))
        }
    }

    @Test func anUnknownFormatVersionIsRefusedListingReadableVersions() throws {
        var bytes = try StateEncoder.encode(root: makeKernel())
        bytes[8] = 99
        do {
            _ = try StateDecoder(registry: testRegistry()).decode(bytes)
            Issue.record("version 99 accepted")
        } catch let error as StateError {
            #expect(error.reason == .unsupportedVersion(found: 99, supported: StateFormat.readableVersions))
            #expect(error.description.contains("this build reads 1"))
        }
    }
}

@Suite struct Summary {
    @Test func summaryCountsObjectsByTypeWithoutTheKernelsTypes() throws {
        let summary = try StateSummary(bytes: StateEncoder.encode(root: makeKernel()))
        #expect(summary.rootType == "test.Kernel")
        #expect(summary.objectCount == 8)
        let byName = Dictionary(uniqueKeysWithValues: summary.types.map { ($0.name, $0) })
        #expect(byName["test.Task"]?.objects == 4)
        #expect(byName["test.FDTable"]?.objects == 3)
        #expect(byName["test.Registers"]?.role == "struct")
        #expect(byName["test.Task"]?.fields.contains("parent: &test.Task?") == true)
    }
}

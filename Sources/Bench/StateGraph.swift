#if canImport(Glibc)
import Glibc
#endif
import State

extension BenchSection {
    /// The object-graph half of a checkpoint: a million small kernel-like
    /// objects (each with integers and a reference to the next) encoded and
    /// decoded, beside a plain walk over the same objects as the baseline.
    static let stateGraph = BenchSection(
        name: "state-graph",
        summary: "objects/s to encode and decode a graph of small objects",
        options: ["--objects N   objects in the graph (default 1000000)",
                  "--repeats N   timed runs per row, best kept (default 3)",
                  "--image DIR   also write the graph as an image (lz4) to DIR, for `runsc statefile`"],
        run: runStateGraph)
}

/// A task-sized object: a few integers, a string and two references.
private final class BenchNode: Savable {
    static let savedTypeName = "bench.Node"
    var id: Int64 = 0
    var flags: UInt32 = 0
    var name = ""
    var next: BenchNode?
    var owner: BenchGraph?

    func save(to sink: inout SaveSink) throws {
        try sink.save("id", id)
        try sink.save("flags", flags)
        try sink.save("name", name)
        try sink.save("next", next)
        try sink.save("owner", owner)
    }

    func load(from source: inout LoadSource) throws {
        id = try source.load("id")
        flags = try source.load("flags")
        name = try source.load("name")
        next = try source.load("next")
        owner = try source.load("owner")
    }
}

private final class BenchGraph: Savable {
    static let savedTypeName = "bench.Graph"
    var nodes: [BenchNode] = []

    func save(to sink: inout SaveSink) throws {
        try sink.save("nodes", nodes)
    }

    func load(from source: inout LoadSource) throws {
        nodes = try source.load("nodes")
    }

    /// Breaks the chain and the back references so that releasing a million
    /// linked objects does not recurse once per link.
    func tearDown() {
        for node in nodes {
            node.next = nil
            node.owner = nil
        }
        nodes = []
    }
}

private func runStateGraph(_ options: BenchOptions) throws {
    let count = max(options.int("objects", default: 1_000_000), 1)
    let repeats = options.int("repeats", default: 3)
    let graph = BenchGraph()
    graph.nodes = (0..<count).map { index in
        let node = BenchNode()
        node.id = Int64(index)
        node.flags = UInt32(index & 0xff)
        node.name = index % 16 == 0 ? "task-\(index)" : "t"
        return node
    }
    for index in 0..<(count - 1) { graph.nodes[index].next = graph.nodes[index + 1] }
    for node in graph.nodes { node.owner = graph }
    var registry = StateRegistry()
    registry.register(BenchGraph.self)
    registry.register(BenchNode.self)

    var checksum: Int64 = 0
    let walkTime = bestTime(repeats) {
        for node in graph.nodes {
            checksum &+= node.id &+ Int64(node.flags) &+ Int64(node.name.utf8.count)
            if node.next == nil || node.owner == nil { checksum &+= 1 }
        }
    }
    var bytes: [UInt8] = []
    let encodeTime = try bestTime(repeats) { bytes = try StateEncoder.encode(root: graph, registry: registry) }
    var decoded: BenchGraph?
    let decodeTime = try bestTime(repeats) {
        decoded?.tearDown()
        decoded = try StateDecoder(registry: registry).decode(bytes, as: BenchGraph.self)
    }
    guard let restored = decoded, restored.nodes.count == count,
          restored.nodes[count - 1].id == Int64(count - 1), restored.nodes[0].owner === restored else {
        throw StateError.invalidValue("the decoded graph differs from the original")
    }

    print("state-graph: \(count) objects, \(bytes.count) bytes encoded (\(bytes.count / count) per object), "
          + "best of \(repeats) (checksum \(checksum & 0xffff))")
    var table = Table(columns: ["operation", "seconds", "objects/s", "x walk"])
    for (name, time) in [("walk (baseline)", walkTime), ("encode", encodeTime), ("decode", decodeTime)] {
        table.add([name, format(time, decimals: 3), format(Double(count) / time), format(time / walkTime, decimals: 1)])
    }
    print(table.render())

    let imagePath = options.string("image", default: "")
    if !imagePath.isEmpty {
        let writer = try ImageWriter(directory: imagePath, compression: .lz4,
                                     info: ImageInfo(runtimeVersion: "runsc-bench", containerIDs: ["bench"]))
        try writer.writeState(bytes)
        try writer.writePages(memory: UnsafeRawBufferPointer(start: nil, count: 0), ranges: [])
        _ = try writer.commit()
        print("wrote \(imagePath)")
    }
    graph.tearDown()
    restored.tearDown()
}

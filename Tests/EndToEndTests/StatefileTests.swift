import Foundation
import State
import Testing

/// A process-like object graph, written as a real image for `runsc statefile` to read.
final class SampleProcess: Savable {
    static let savedTypeName = "sample.Process"
    var pid: Int32 = 0
    var children: [SampleProcess] = []
    var parent: SampleProcess?

    func save(to sink: inout SaveSink) throws {
        try sink.save("pid", pid)
        try sink.save("children", children)
        try sink.save("parent", parent)
    }

    func load(from source: inout LoadSource) throws {
        pid = try source.load("pid")
        children = try source.load("children")
        parent = try source.load("parent")
    }
}

@Suite struct StatefileCommandTests {
    /// An image of one process with three children and 64 KiB of memory.
    func makeImage(in workspace: Workspace, compression: Compression = .zstd) throws -> String {
        let root = SampleProcess()
        root.pid = 1
        root.children = (2...4).map { pid in
            let child = SampleProcess()
            child.pid = Int32(pid)
            child.parent = root
            return child
        }
        let path = workspace.path + "/image"
        let writer = try ImageWriter(directory: path, compression: compression,
                                     info: ImageInfo(runtimeVersion: "test", containerIDs: ["c1"],
                                                     metadata: ["reason": "statefile test"]))
        try writer.writeState(StateEncoder.encode(root: root))
        var memory = [UInt8](repeating: 0, count: 64 << 10)
        for index in stride(from: 0, to: memory.count, by: 3) { memory[index] = UInt8(index & 0x7f) }
        try memory.withUnsafeBytes { raw in
            _ = try writer.writePages(memory: raw, ranges: [0..<UInt64(raw.count)])
        }
        _ = try writer.commit()
        return path
    }

    @Test func statefileDescribesTheManifestFilesAndObjectGraph() throws {
        let workspace = try Workspace()
        let image = try makeImage(in: workspace)
        let result = try workspace.runsc("statefile", image)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("zstd"))
        #expect(result.stdout.contains("containers: c1"))
        #expect(result.stdout.contains("reason: statefile test"))
        #expect(result.stdout.contains("root sample.Process, 4 objects"))
        #expect(result.stdout.contains("pages.img"))
    }

    @Test func statefileJSONIsMachineReadable() throws {
        let workspace = try Workspace()
        let image = try makeImage(in: workspace, compression: .lz4)
        let result = try workspace.runsc("statefile", "--json", image)
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let state = object?["state"] as? [String: Any]
        #expect(state?["objectCount"] as? Int == 4)
        #expect(state?["rootType"] as? String == "sample.Process")
        let manifest = (object?["image"] as? [String: Any])?["manifest"] as? [String: Any]
        #expect(manifest?["compression"] as? String == "lz4")
    }

    @Test func aDamagedImageIsRefusedWithTheFileNamed() throws {
        let workspace = try Workspace()
        let image = try makeImage(in: workspace)
        let statePath = image + "/state.img"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: statePath))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: statePath))
        let result = try workspace.runsc("statefile", image)
        #expect(result.status == 1)
        #expect(result.isCleanError)
        #expect(result.stderr.contains("state.img"), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test func aMissingImageIsAClearError() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("statefile", "no-such-image")
        #expect(result.status == 1)
        #expect(result.isCleanError)
        #expect(result.stderr.contains("no-such-image"), "\(result.stderr)")
    }
}

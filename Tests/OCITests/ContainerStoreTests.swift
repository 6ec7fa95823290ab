import FoundationEssentials
import Testing
@testable import OCI

@Suite struct ContainerStoreTests {
    func state(_ id: String, _ status: ContainerState.Status = .created, pid: Int32? = 42) -> ContainerState {
        ContainerState(id: id, status: status, pid: pid, bundle: "/bundles/\(id)", annotations: ["k": "v"])
    }

    @Test func createdContainersLoadBackAndAreListedInOrder() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory + "/state/runsc")
            try store.create(state("web"))
            try store.create(state("db", .running))
            #expect(try store.load(ContainerID("web")) == state("web"))
            #expect(try store.list() == [state("db", .running), state("web")])
            #expect(FileManager.default.fileExists(atPath: directory + "/state/runsc/web/state.json"))
        }
    }

    @Test func aSecondCreateWithTheSameIDFails() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory)
            try store.create(state("one"))
            #expect(throws: ContainerStoreError.alreadyExists(id: "one")) { try store.create(state("one", .running)) }
            #expect(try store.load(ContainerID("one")).status == .created)
        }
    }

    @Test func saveReplacesTheStateAndLeavesNoTemporaryFiles() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory)
            try store.create(state("c"))
            try store.save(state("c", .stopped, pid: nil))
            let loaded = try store.load(ContainerID("c"))
            #expect(loaded.status == .stopped)
            #expect(loaded.pid == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/c") == ["state.json"])
        }
    }

    @Test func savingAContainerThatWasNeverCreatedFails() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory)
            #expect(throws: ContainerStoreError.notFound(id: "ghost")) { try store.save(state("ghost")) }
        }
    }

    @Test func invalidIDsNeverTouchTheDisk() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory + "/root")
            #expect(throws: ContainerStoreError.self) { try store.create(state("../escape")) }
            #expect(!FileManager.default.fileExists(atPath: directory + "/root"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/escape"))
        }
    }

    @Test func missingContainersAndMissingRootsAreNotErrorsForList() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory + "/never-created")
            let containers = try store.list()
            #expect(containers.isEmpty)
            #expect(throws: ContainerStoreError.notFound(id: "x")) { try store.load(ContainerID("x")) }
            #expect(!store.exists(try ContainerID("x")))
        }
    }

    @Test func removeDeletesTheDirectoryEvenWithoutAStateFile() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory)
            try store.create(state("keep"))
            try store.create(state("gone"))
            try makeDirectory(directory + "/gone/sub")
            try writeFile(directory + "/gone/sub/file", "x")
            try makeDirectory(directory + "/half-created")
            #expect(try store.list().map(\.id) == ["gone", "keep"])
            try store.remove(ContainerID("gone"))
            try store.remove(ContainerID("half-created"))
            #expect(try store.list().map(\.id) == ["keep"])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["keep"])
            #expect(throws: ContainerStoreError.notFound(id: "gone")) { try store.remove(ContainerID("gone")) }
        }
    }

    @Test func corruptStateFilesAreReportedWithTheirPath() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory)
            try store.create(state("bad"))
            try writeFile(directory + "/bad/state.json", "{\"id\": \"bad\", \"status\": \"exploded\"}")
            let error = #expect(throws: ContainerStoreError.self) { try store.load(ContainerID("bad")) }
            guard case .corrupt(let path, _) = error else {
                Issue.record("expected .corrupt, got \(String(describing: error))")
                return
            }
            #expect(path == directory + "/bad/state.json")
        }
    }

    @Test func aStateFileForAnotherIDIsCorrupt() throws {
        try withTemporaryDirectory { directory in
            let store = ContainerStore(root: directory)
            try store.create(state("a"))
            try makeDirectory(directory + "/b")
            try FileManager.default.copyItem(atPath: directory + "/a/state.json", toPath: directory + "/b/state.json")
            let error = #expect(throws: ContainerStoreError.self) { try store.load(ContainerID("b")) }
            #expect(error?.description.contains("holds container \"a\"") == true)
        }
    }

    @Test func stateJSONHasTheOCIFieldNames() throws {
        let text = String(decoding: try state("x", .running).encodedJSON(), as: UTF8.self)
        for key in ["\"ociVersion\"", "\"id\" : \"x\"", "\"status\" : \"running\"", "\"pid\" : 42", "\"bundle\" : \"/bundles/x\"", "\"annotations\""] {
            #expect(text.contains(key), "\(key) missing from \(text)")
        }
    }
}

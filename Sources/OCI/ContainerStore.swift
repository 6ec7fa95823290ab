import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `--root` state directory: one subdirectory per container holding its
/// `state.json`, so that separate `runsc` invocations agree on what exists.
///
/// State files are replaced atomically (temporary file, fsync, rename): a crash
/// mid-write leaves the previous state, never a torn one.
public struct ContainerStore: Sendable {
    /// The state directory, absolute.
    public let root: String

    public static let stateFileName = "state.json"

    public init(root: String) {
        self.root = Paths.absolute(root)
    }

    /// Where a container's files live; later layers keep sockets and logs here too.
    public func directory(for id: ContainerID) -> String {
        root + "/" + id.rawValue
    }

    public func stateFile(for id: ContainerID) -> String {
        directory(for: id) + "/" + Self.stateFileName
    }

    public func exists(_ id: ContainerID) -> Bool {
        (try? HostFiles.kind(stateFile(for: id)).get()) == .regularFile
    }

    /// Makes the root directory and its parents if they are missing.
    public func makeRoot() throws(ContainerStoreError) {
        do {
            try HostFiles.makeDirectories(root)
        } catch {
            throw .io(path: root, reason: "cannot create the state directory: \(error)")
        }
    }

    /// Records a new container; fails if one with this ID already has a directory.
    public func create(_ state: ContainerState) throws(ContainerStoreError) {
        let id = try validID(state.id)
        try makeRoot()
        let directory = directory(for: id)
        if mkdir(directory, 0o711) != 0 {
            let failure = HostFiles.Failure(errno: errno)
            if failure.errno == EEXIST { throw .alreadyExists(id: id.rawValue) }
            throw .io(path: directory, reason: "cannot create: \(failure)")
        }
        do {
            try write(state, id: id)
        } catch {
            try? HostFiles.removeTree(directory)
            throw error
        }
    }

    /// Replaces the state of an existing container.
    public func save(_ state: ContainerState) throws(ContainerStoreError) {
        let id = try validID(state.id)
        guard HostFiles.isDirectory(directory(for: id)) else { throw .notFound(id: id.rawValue) }
        try write(state, id: id)
    }

    public func load(_ id: ContainerID) throws(ContainerStoreError) -> ContainerState {
        let path = stateFile(for: id)
        let bytes: [UInt8]
        do {
            bytes = try HostFiles.readFile(path)
        } catch where error.errno == ENOENT || error.errno == ENOTDIR {
            throw .notFound(id: id.rawValue)
        } catch {
            throw .io(path: path, reason: "cannot read: \(error)")
        }
        let state: ContainerState
        do {
            state = try JSONDecoder().decode(ContainerState.self, from: Data(bytes))
        } catch {
            throw .corrupt(path: path, reason: "cannot decode: \(error)")
        }
        guard state.id == id.rawValue else {
            throw .corrupt(path: path, reason: "holds container \"\(state.id)\", expected \"\(id.rawValue)\"")
        }
        return state
    }

    /// Every container with a state file, sorted by ID. Directories without one (a create
    /// that died before writing it) are skipped; `remove` cleans them up.
    public func list() throws(ContainerStoreError) -> [ContainerState] {
        let names: [String]
        do {
            names = try HostFiles.list(root)
        } catch where error.errno == ENOENT {
            return []
        } catch {
            throw .io(path: root, reason: "cannot list: \(error)")
        }
        var states: [ContainerState] = []
        for name in names.sorted() {
            guard let id = try? ContainerID(name), exists(id) else { continue }
            states.append(try load(id))
        }
        return states
    }

    /// Deletes a container's directory and everything in it, with or without a state file.
    public func remove(_ id: ContainerID) throws(ContainerStoreError) {
        let directory = directory(for: id)
        guard HostFiles.isDirectory(directory) else { throw .notFound(id: id.rawValue) }
        do {
            try HostFiles.removeTree(directory)
        } catch {
            throw .io(path: directory, reason: "cannot remove: \(error)")
        }
    }

    private func validID(_ string: String) throws(ContainerStoreError) -> ContainerID {
        do {
            return try ContainerID(string)
        } catch {
            throw .invalidID(error)
        }
    }

    private func write(_ state: ContainerState, id: ContainerID) throws(ContainerStoreError) {
        let path = stateFile(for: id)
        do {
            try HostFiles.writeAtomically(try state.encodedJSON(), to: path)
        } catch let failure as HostFiles.Failure {
            throw .io(path: path, reason: "cannot write: \(failure)")
        } catch {
            throw .io(path: path, reason: "cannot encode: \(error)")
        }
    }
}

public enum ContainerStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(id: String)
    case alreadyExists(id: String)
    case invalidID(ContainerIDError)
    case corrupt(path: String, reason: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let id): "container \"\(id)\" does not exist"
        case .alreadyExists(let id): "container \"\(id)\" already exists"
        case .invalidID(let error): error.description
        case .corrupt(let path, let reason): "\(path): corrupt container state: \(reason)"
        case .io(let path, let reason): "\(path): \(reason)"
        }
    }
}

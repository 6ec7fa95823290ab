import ArgumentParser
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Checks shared by several commands, so each reports a bad argument the same way.
enum CommandSupport {
    /// The container must already be in the state directory (start, state, kill, ...).
    static func existingContainer(_ rawID: String, in store: ContainerStore) throws -> (ContainerID, ContainerState) {
        let id = try ContainerID(rawID)
        let state = try store.load(id)
        return (id, state)
    }

    /// The ID must be free (run, create, restore).
    static func newContainerID(_ rawID: String, in store: ContainerStore) throws -> ContainerID {
        let id = try ContainerID(rawID)
        if store.exists(id) { throw ContainerStoreError.alreadyExists(id: rawID) }
        return id
    }

    /// The directory that will hold `--pid-file` must exist, so the mistake shows before anything starts.
    static func checkPIDFile(_ path: String?) throws {
        guard let path else { return }
        guard !path.isEmpty else { throw RunscError("--pid-file must not be empty") }
        let parent = path.hasPrefix("/") ? parentDirectory(of: path) : parentDirectory(of: "./" + path)
        var info = stat()
        guard stat(parent, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw RunscError("--pid-file \(path): directory \(parent) does not exist")
        }
    }

    /// The bundle named by `--bundle`, defaulting to the current directory as runc does.
    static func bundle(_ directory: String?) throws -> Bundle {
        try Bundle.load(directory: directory ?? ".")
    }

    private static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }
}

/// `--format` of `list` and `ps`, as runc spells it.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
}

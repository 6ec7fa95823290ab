import ArgumentParser
import OCI

/// `runsc state`: print a container's OCI state JSON, as its sandbox reports it
/// ("stopped" when the sandbox process is gone).
struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Print the OCI state of a container as JSON.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The container to describe.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let handle = try ContainerHandle.open(id, in: try global.store())
        let bytes = try handle.currentState().container.encodedJSON()
        print(String(decoding: bytes, as: UTF8.self), terminator: "")
    }
}

import ArgumentParser
import OCI

/// `runsc state`: print a container's OCI state JSON.
struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Print the OCI state of a container as JSON.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The container to describe.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let (id, _) = try CommandSupport.existingContainer(id, in: try global.store())
        throw RunscError.notBuilt(
            "state", "the sandbox control server does not exist, so the status of container \"\(id)\" cannot be checked")
    }
}

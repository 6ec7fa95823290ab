import ArgumentParser
import OCI

/// `runsc start`: run the program of a created container.
struct StartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a created container.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The container to start.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let (id, _) = try CommandSupport.existingContainer(id, in: try global.store())
        throw RunscError.notBuilt("start", "the sandbox control server does not exist, so container \"\(id)\" cannot start")
    }
}

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
        let handle = try ContainerHandle.open(id, in: try global.store())
        _ = try handle.call(.start, command: "start")
    }
}

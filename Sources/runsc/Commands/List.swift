import ArgumentParser
import OCI

/// `runsc list`: the containers in the state directory.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List containers.")

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table
        case json
    }

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("f"), .long], help: "Output format: table or json.")
    var format: Format = .table

    @Flag(name: [.customShort("q"), .long], help: "Print only the container IDs.")
    var quiet = false

    func run() throws {
        _ = try global.configure()
        _ = try global.stateRoot()
        throw RunscError.notBuilt("list", "container status comes from the sandbox control server, which does not exist")
    }
}

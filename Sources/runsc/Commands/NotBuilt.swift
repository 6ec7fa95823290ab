import ArgumentParser

/// Subcommands of the OCI command line that do not exist yet. Each takes
/// whatever runc's callers (podman, containerd, Docker) pass, so the answer is
/// a plain "not built yet" with status 1 and not a parser error that hides
/// what is missing.
protocol NotBuiltCommand: ParsableCommand {
    /// What the command would do, for the message.
    static var missing: String { get }
    var global: GlobalOptions { get }
}

extension NotBuiltCommand {
    func run() throws {
        _ = try global.configure()
        throw RunscError.notBuilt(Self.configuration.commandName ?? "command", Self.missing)
    }
}

struct EventsCommand: NotBuiltCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print a container's events and statistics (not built yet).")
    static let missing = "container events and statistics"

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var arguments: [String] = []
}

struct FeaturesCommand: NotBuiltCommand {
    static let configuration = CommandConfiguration(
        commandName: "features", abstract: "Print the runtime's OCI features (not built yet).")
    static let missing = "the OCI features document"

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var arguments: [String] = []
}

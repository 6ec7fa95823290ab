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

struct ExecCommand: NotBuiltCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec", abstract: "Run a new process in a running container (not built yet).")
    static let missing = "a second process in a container"

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var arguments: [String] = []
}

struct PsCommand: NotBuiltCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the processes of a container (not built yet).")
    static let missing = "listing a container's processes"

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var arguments: [String] = []
}

struct PauseCommand: NotBuiltCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Suspend every process of a container (not built yet).")
    static let missing = "suspending a container (checkpoint --leave-running saves one without stopping it)"

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var arguments: [String] = []
}

struct ResumeCommand: NotBuiltCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Resume a paused container (not built yet).")
    static let missing = "resuming a paused container"

    @OptionGroup var global: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: .hidden) var arguments: [String] = []
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

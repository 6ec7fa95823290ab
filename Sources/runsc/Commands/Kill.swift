import ArgumentParser
import OCI

/// `runsc kill`: send a signal to a container's init process (or all its processes).
struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "Send a signal to a container.",
        discussion: "SIGNAL is a name (TERM, SIGTERM, term) or a number (15); the default is SIGTERM.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: [.customShort("a"), .long], help: "Signal every process in the container, not only init.")
    var all = false

    @Argument(help: ArgumentHelp("The container to signal.", valueName: "container-id"))
    var id: String

    @Argument(help: ArgumentHelp("The signal to send.", valueName: "signal"))
    var signal = "TERM"

    func run() throws {
        _ = try global.configure()
        let number = try Signals.parse(signal)
        let handle = try ContainerHandle.open(id, in: try global.store())
        _ = try handle.call(.signal(signal: number, all: all), command: "kill")
    }
}

import ArgumentParser
import Boot
import Logging
import OCI

/// `runsc run`: create and start a container from a bundle. Detached, it
/// returns once the container runs; in the foreground it forwards the
/// signals it receives to the container, waits for it, deletes it, and exits
/// with its status (the code, or 128+N for signal N).
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Create and start a container from an OCI bundle.")

    @OptionGroup var global: GlobalOptions

    @Flag(name: [.customShort("d"), .long], help: "Return once the container has started instead of waiting for it.")
    var detach = false

    @OptionGroup var container: CreateOptions

    func run() throws {
        let logger = try global.configure()
        // Blocked before the sandbox exists, so a Ctrl-C in between is forwarded, not fatal to runsc alone.
        if !detach { SignalRelay.block() }
        let handle = try CreateCommand.createAndStart(global: global, container, command: "run", logger: logger)
        logger.debug("started", metadata: ["id": "\(handle.id)", "detached": "\(detach)"])
        if detach { return }
        try RunCommand.waitInForeground(handle, logger: logger, command: "run")
    }

    /// Forwards signals to the container, waits for it, deletes it, and exits
    /// with its status (shared with a foreground `restore`).
    static func waitInForeground(_ handle: ContainerHandle, logger: Logger, command: String) throws {
        try SignalRelay.start { [handle, logger] signal in
            logger.debug("forwarding \(Signals.name(of: signal)) to the container")
            _ = try? handle.call(.signal(signal: signal, all: false), command: "kill")
        }
        let response: ControlResponse
        do {
            response = try handle.call(.wait, command: command)
        } catch {
            try? handle.destroy()
            throw error
        }
        try? handle.destroy()
        guard case .exited(let status) = response else {
            throw RunscError("\(command): container \"\(handle.id)\": unexpected answer \(response)")
        }
        // ExitCode(0) would make the entry point print an empty line.
        if status.shellStatus != 0 { throw ExitCode(status.shellStatus) }
    }
}

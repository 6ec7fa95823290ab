import ArgumentParser
import Logging
import OCI

/// `runsc create`: set up a container from a bundle without starting its
/// program (`start` does that). The sandbox process it spawns holds the
/// container and outlives this command.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a container from an OCI bundle without starting it.")

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("b"), .long], help: ArgumentHelp("The bundle directory (default: current directory).", valueName: "dir"))
    var bundle: String?

    @Option(help: ArgumentHelp("Write the container's init PID to this file.", valueName: "file"))
    var pidFile: String?

    @Argument(help: ArgumentHelp("A name for the new container.", valueName: "container-id"))
    var id: String

    func run() throws {
        let logger = try global.configure()
        _ = try CreateCommand.create(global: global, bundle: bundle, pidFile: pidFile, id: id, logger: logger)
    }

    /// What `create` and `run` share: checks, the sandbox, the PID file. Returns the handle of the created container.
    /// With `imagePath`, the sandbox restores the image instead of creating init (`runsc restore`).
    static func create(global: GlobalOptions, bundle: String?, pidFile: String?, id rawID: String,
                       imagePath: String? = nil, logger: Logger? = nil) throws -> ContainerHandle {
        let store = try global.store()
        ContainerHandle.reclaimIfStale(rawID, in: store)
        let id = try CommandSupport.newContainerID(rawID, in: store)
        try CommandSupport.checkPIDFile(pidFile)
        let bundle = try CommandSupport.bundle(bundle)
        logger?.debug("starting the sandbox", metadata: ["id": "\(id)", "bundle": "\(bundle.directory)"])
        let pid = try SandboxLauncher.launch(global: global, store: store, bundle: bundle, id: id, imagePath: imagePath)
        logger?.debug("sandbox ready", metadata: ["id": "\(id)", "pid": "\(pid)"])
        let handle = try ContainerHandle.open(rawID, in: store)
        if let pidFile {
            do {
                try CommandSupport.writePIDFile(pidFile, pid: pid)
            } catch {
                try? handle.destroy()
                throw error
            }
        }
        return handle
    }
}

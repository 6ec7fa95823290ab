import ArgumentParser
import OCI

/// `runsc create`: set up a container from a bundle without starting its program (`start` does that).
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
        let id = try CommandSupport.newContainerID(id, in: try global.store())
        try CommandSupport.checkPIDFile(pidFile)
        let bundle = try CommandSupport.bundle(bundle)
        logger.debug("create: bundle valid", metadata: ["id": "\(id)", "rootfs": "\(bundle.rootfs)"])
        throw RunscError.notBuilt("create", "the sandbox (Boot and Sentry) does not exist, so container \"\(id)\" cannot be created")
    }
}

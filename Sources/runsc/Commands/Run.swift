import ArgumentParser
import OCI

/// `runsc run`: create and start a container from a bundle, then wait for it unless detached.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Create and start a container from an OCI bundle.")

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("b"), .long], help: ArgumentHelp("The bundle directory (default: current directory).", valueName: "dir"))
    var bundle: String?

    @Flag(name: [.customShort("d"), .long], help: "Return once the container has started instead of waiting for it.")
    var detach = false

    @Option(help: ArgumentHelp("Write the container's init PID to this file.", valueName: "file"))
    var pidFile: String?

    @Argument(help: ArgumentHelp("A name for the new container.", valueName: "container-id"))
    var id: String

    func run() throws {
        let logger = try global.configure()
        let id = try CommandSupport.newContainerID(id, in: try global.store())
        try CommandSupport.checkPIDFile(pidFile)
        let bundle = try CommandSupport.bundle(bundle)
        logger.debug("run: bundle valid", metadata: ["id": "\(id)", "rootfs": "\(bundle.rootfs)"])
        throw RunscError.notBuilt("run", "the sandbox (Boot and Sentry) does not exist, so container \"\(id)\" cannot start")
    }
}

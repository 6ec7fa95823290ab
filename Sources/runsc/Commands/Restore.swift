import ArgumentParser
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc restore`: create a container from a checkpoint image; its program continues where it stopped.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Create and start a container from a checkpoint image.")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The image directory written by `runsc checkpoint`.", valueName: "dir"))
    var imagePath: String

    @Option(name: [.customShort("b"), .long], help: ArgumentHelp("The bundle directory (default: current directory).", valueName: "dir"))
    var bundle: String?

    @Flag(name: [.customShort("d"), .long], help: "Return once the container is restored instead of waiting for it.")
    var detach = false

    @Option(help: ArgumentHelp("Write the container's init PID to this file.", valueName: "file"))
    var pidFile: String?

    @Argument(help: ArgumentHelp("A name for the restored container.", valueName: "container-id"))
    var id: String

    func run() throws {
        let logger = try global.configure()
        let id = try CommandSupport.newContainerID(id, in: try global.store())
        var info = stat()
        guard !imagePath.isEmpty, stat(imagePath, &info) == 0 else {
            throw RunscError("--image-path \(imagePath): no such directory")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw RunscError("--image-path \(imagePath): not a directory") }
        try CommandSupport.checkPIDFile(pidFile)
        let bundle = try CommandSupport.bundle(bundle)
        logger.debug("restore: arguments valid", metadata: ["id": "\(id)", "rootfs": "\(bundle.rootfs)"])
        throw RunscError.notBuilt("restore", "the Sentry does not exist, so container \"\(id)\" cannot be restored")
    }
}

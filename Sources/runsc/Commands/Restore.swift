import ArgumentParser
import Boot
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc restore`: create a container from a checkpoint image; its program
/// continues where it stopped. In the foreground it waits like `run` and exits
/// with the container's status.
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
        guard !imagePath.isEmpty else { throw RunscError("--image-path must not be empty") }
        var info = stat()
        guard stat(imagePath, &info) == 0 else { throw RunscError("--image-path \(imagePath): no such directory") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw RunscError("--image-path \(imagePath): not a directory") }
        if !detach { SignalRelay.block() }
        let handle = try CreateCommand.create(global: global, bundle: bundle, pidFile: pidFile, id: id,
                                              imagePath: CommandSupport.absolutePath(imagePath))
        do {
            _ = try handle.call(.start, command: "restore")
        } catch {
            try? handle.destroy()
            throw error
        }
        logger.debug("restored", metadata: ["id": "\(handle.id)", "detached": "\(detach)"])
        if detach { return }
        try RunCommand.waitInForeground(handle, logger: logger, command: "restore")
    }
}

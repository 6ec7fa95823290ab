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

    @Flag(name: [.customShort("d"), .long], help: "Return once the container is restored instead of waiting for it.")
    var detach = false

    @Option(help: ArgumentHelp("Write the restore's log (restore.log) in this directory, as runc does.", valueName: "dir"))
    var workPath: String?

    @Flag(help: "Accepted for runc's callers: TCP connections live inside the sandbox and are always restored.")
    var tcpEstablished = false

    @Flag(help: "Accepted for runc's callers: file locks are always restored.")
    var fileLocks = false

    @OptionGroup var container: CreateOptions

    func run() throws {
        let logger = try global.configure()
        guard !imagePath.isEmpty else { throw RunscError("--image-path must not be empty") }
        var info = stat()
        guard stat(imagePath, &info) == 0 else { throw RunscError("--image-path \(imagePath): no such directory") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw RunscError("--image-path \(imagePath): not a directory") }
        if !detach { SignalRelay.block() }
        let handle = try CreateCommand.createAndStart(global: global, container, imagePath: CommandSupport.absolutePath(imagePath),
                                                      command: "restore", logger: logger)
        logger.debug("restored", metadata: ["id": "\(handle.id)", "detached": "\(detach)"])
        if let workPath { CheckpointImage.log("restored container \"\(handle.id)\" from \(imagePath)\n", in: workPath, file: "restore.log") }
        if detach { return }
        try RunCommand.waitInForeground(handle, logger: logger, command: "restore")
    }
}

import ArgumentParser
import Boot
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc checkpoint`: save a running container to an image directory.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Save a running container to an image directory.")

    enum Compression: String, ExpressibleByArgument, CaseIterable {
        case none
        case lz4
        case zstd
    }

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Where to write the image.", valueName: "dir"))
    var imagePath: String

    @Flag(help: "Keep the container running after the checkpoint (default: stop it).")
    var leaveRunning = false

    @Option(help: "How to compress memory pages: none, lz4 (fast) or zstd (small).")
    var compression: Compression = .lz4

    @Argument(help: ArgumentHelp("The container to checkpoint.", valueName: "container-id"))
    var id: String

    /// Seconds to wait for the sandbox to write the image (a large container takes a while).
    static let saveTimeout = 3600

    func run() throws {
        let logger = try global.configure()
        guard !imagePath.isEmpty else { throw RunscError("--image-path must not be empty") }
        let handle = try ContainerHandle.open(id, in: try global.store())
        let request = CheckpointRequest(imagePath: CommandSupport.absolutePath(imagePath),
                                        compression: compression.rawValue, leaveRunning: leaveRunning)
        let progress = isatty(STDERR_FILENO) != 0 ? CheckpointProgress(container: handle.id.rawValue) : nil
        let response: ControlResponse
        do {
            response = try handle.call(.checkpoint(request), command: "checkpoint", timeout: Self.saveTimeout)
        } catch {
            progress?.finish(nil)
            throw error
        }
        guard case .checkpointed(let summary) = response else {
            progress?.finish(nil)
            throw RunscError("checkpoint: container \"\(handle.id)\": unexpected answer \(response)")
        }
        progress?.finish(summary)
        logger.debug("checkpointed", metadata: ["id": "\(handle.id)", "summary": "\(summary)"])
    }
}

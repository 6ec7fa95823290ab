import ArgumentParser
import OCI

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

    func run() throws {
        _ = try global.configure()
        guard !imagePath.isEmpty else { throw RunscError("--image-path must not be empty") }
        let (id, _) = try CommandSupport.existingContainer(id, in: try global.store())
        throw RunscError.notBuilt("checkpoint", "the Sentry does not exist, so container \"\(id)\" cannot be saved")
    }
}

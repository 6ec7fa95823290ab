import ArgumentParser
import Boot
import CShim
import OCI
import Sentry
import State

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

    @Option(help: ArgumentHelp("Write the checkpoint's log (dump.log) in this directory, as runc does.", valueName: "dir"))
    var workPath: String?

    @Flag(help: "Accepted for runc's callers: TCP connections live inside the sandbox and are always saved.")
    var tcpEstablished = false

    @Flag(help: "Accepted for runc's callers: file locks are always saved.")
    var fileLocks = false

    @Argument(help: ArgumentHelp("The container to checkpoint.", valueName: "container-id"))
    var id: String

    /// The stopped container's `--pid-file` process exits before this command
    /// returns, so a caller that reaps it (conmon) has the status by then.
    private func waitForInitWaiter(_ handle: ContainerHandle) {
        guard let waiter = SandboxProcess.read(from: handle.directory, name: SandboxLauncher.waiterFileName),
              waiter.isAlive else { return }
        _ = cshim_wait_for_exit(waiter.pid, Int32(ContainerHandle.exitTimeout * 1000))
    }

    /// Seconds to wait for the sandbox to write the image (a large container takes a while).
    static let saveTimeout = 3600

    /// The image's parent directory, opened for the sandbox to write into (O_PATH: it only needs its name).
    static func openParent(of imagePath: String) throws -> Int32 {
        let parent: String
        do {
            parent = try ImageDirectory.split(imagePath).parent
        } catch {
            throw RunscError("checkpoint: \(error)")
        }
        let fd = open(parent, Int32(bitPattern: LinuxFile.pathOnly) | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw RunscError("checkpoint: cannot create the image \(imagePath) in \(parent): \(SandboxLauncher.errnoText())")
        }
        return fd
    }

    func run() throws {
        let logger = try global.configure()
        guard !imagePath.isEmpty else { throw RunscError("--image-path must not be empty") }
        let handle = try ContainerHandle.open(id, in: try global.store())
        let request = CheckpointRequest(imagePath: CommandSupport.absolutePath(imagePath),
                                        compression: compression.rawValue, leaveRunning: leaveRunning)
        // The sandbox reaches no host path by name (Confinement): it writes into the directory we open.
        let parent = try Self.openParent(of: request.imagePath)
        defer { close(parent) }
        let progress = isatty(STDERR_FILENO) != 0 ? CheckpointProgress(container: handle.id.rawValue) : nil
        let response: ControlResponse
        do {
            response = try handle.call(.checkpoint(request), files: [parent], command: "checkpoint",
                                       timeout: Self.saveTimeout)
        } catch {
            progress?.finish(nil)
            throw error
        }
        guard case .checkpointed(let summary) = response else {
            progress?.finish(nil)
            throw RunscError("checkpoint: container \"\(handle.id)\": unexpected answer \(response)")
        }
        progress?.finish(summary)
        try CheckpointImage.markForCRIUCallers(imagePath)
        if let workPath { CheckpointImage.log("checkpointed container \"\(handle.id)\": \(summary)\n", in: workPath, file: "dump.log") }
        if !leaveRunning { waitForInitWaiter(handle) }
        logger.debug("checkpointed", metadata: ["id": "\(handle.id)", "summary": "\(summary)"])
    }
}

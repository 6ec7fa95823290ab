import ArgumentParser
import Boot
import OCI

#if canImport(Glibc)
import Glibc
#endif

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
        if detach {
            throw RunscError.notBuilt("run --detach", "the sandbox process does not exist yet; run in the foreground")
        }
        // The Loader moves the stdio it is given to host FDs 256-258 and closes
        // it: give it copies, so runsc keeps its own stderr for messages.
        let stdio = [dup(0), dup(1), dup(2)]
        guard !stdio.contains(where: { $0 < 0 }) else { throw RunscError("cannot duplicate stdio") }
        let args = LoaderArgs(containerID: "\(id)", spec: bundle.spec, rootfs: bundle.rootfs, stdioFDs: stdio,
                              configuration: .init(countSyscalls: global.debug))
        let loader: Loader
        do {
            loader = try Loader(args: args, logger: logger)
        } catch {
            for fd in stdio { close(fd) }
            throw RunscError("cannot start container \"\(id)\": \(error)")
        }
        let status = try loader.run()
        // ExitCode(0) would make the entry point print an empty line.
        if status != 0 { throw ExitCode(status) }
    }
}

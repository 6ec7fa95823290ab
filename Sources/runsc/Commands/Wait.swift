import ArgumentParser
import OCI

/// `runsc wait`: block until a container (or one of its processes) exits, then print its status.
struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait for a container or one of its processes to exit.")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Wait for this PID inside the container instead of init.", valueName: "pid"))
    var pid: Int32?

    @Option(help: ArgumentHelp("Wait for this PID in the root PID namespace instead of init.", valueName: "pid"))
    var rootpid: Int32?

    @Argument(help: ArgumentHelp("The container to wait for.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        if pid != nil && rootpid != nil { throw RunscError("--pid and --rootpid cannot both be given") }
        for value in [pid, rootpid].compactMap({ $0 }) where value <= 0 {
            throw RunscError("PID \(value) is not valid: PIDs are positive")
        }
        let (id, _) = try CommandSupport.existingContainer(id, in: try global.store())
        throw RunscError.notBuilt("wait", "the sandbox control server does not exist, so container \"\(id)\" cannot be waited for")
    }
}

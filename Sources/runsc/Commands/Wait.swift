import ArgumentParser
import Boot
import FoundationEssentials
import OCI

/// `runsc wait`: block until a container exits (or with `--pid` a process
/// `runsc exec` started, also after it has exited: its status is kept until
/// asked for once), then print its exit status as gVisor's runsc does:
/// `{"id":"ID","exitStatus":N}`, N being the code or 128+N for signal N.
struct WaitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait", abstract: "Wait for a container or one of its processes to exit.")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Wait for this PID inside the container instead of init.", valueName: "pid"))
    var pid: Int32?

    @Option(help: ArgumentHelp("Wait for this PID in the sandbox's root PID namespace (the container's) instead of init.", valueName: "pid"))
    var rootpid: Int32?

    @Argument(help: ArgumentHelp("The container to wait for.", valueName: "container-id"))
    var id: String

    struct Result: Codable {
        var id: String
        var exitStatus: Int32
    }

    func run() throws {
        _ = try global.configure()
        if pid != nil && rootpid != nil { throw RunscError("--pid and --rootpid cannot both be given") }
        for value in [pid, rootpid].compactMap({ $0 }) where value <= 0 {
            throw RunscError("PID \(value) is not valid: PIDs are positive")
        }
        let handle = try ContainerHandle.open(id, in: try global.store())
        // The sandbox has one PID namespace, the container's: its root PIDs are the container's.
        let target = pid ?? rootpid
        let response = try handle.call(target.map { .waitProcess(pid: $0) } ?? .wait, command: "wait")
        guard case .exited(let status) = response else {
            throw RunscError("wait: container \"\(handle.id)\": unexpected answer \(response)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(Result(id: handle.id.rawValue, exitStatus: status.shellStatus))
        print(String(decoding: json, as: UTF8.self))
    }
}

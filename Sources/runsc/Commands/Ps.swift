import ArgumentParser
import Boot
import FoundationEssentials
import OCI

/// `runsc ps`: a container's processes, as gVisor's runsc prints them: a
/// table (UID PID PPID C TTY STIME TIME CMD), or with `--format json` the
/// PIDs alone, as runc and gVisor do.
struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps", abstract: "List the processes of a container.")

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("f"), .long], help: "Output format: table or json (the PIDs).")
    var format: OutputFormat = .table

    @Argument(help: ArgumentHelp("The container to list.", valueName: "container-id"))
    var id: String

    func run() throws {
        _ = try global.configure()
        let handle = try ContainerHandle.open(id, in: try global.store())
        let status = try handle.currentState().container.status
        guard status != .stopped else { throw RunscError("ps: container \"\(handle.id)\" is stopped: it has no processes") }
        let response = try handle.call(.processes, command: "ps")
        guard case .processes(let processes) = response else {
            throw RunscError("ps: container \"\(handle.id)\": unexpected answer \(response)")
        }
        switch format {
        case .json:
            print(String(decoding: try JSONEncoder().encode(processes.map(\.pid)), as: UTF8.self))
        case .table:
            print(PsCommand.table(processes))
        }
    }

    /// gVisor's layout: Go's tabwriter with a minimum cell width of 10 and 3 spaces of padding.
    static func table(_ processes: [ContainerProcess]) -> String {
        let rows = [["UID", "PID", "PPID", "C", "TTY", "STIME", "TIME", "CMD"]] + processes.map { process in
            [String(process.uid), String(process.pid), String(process.ppid), String(process.c), process.tty,
             process.stime, process.time, process.cmd]
        }
        var widths = [Int](repeating: 10, count: 8)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count + 3) } }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined()
        }.joined(separator: "\n")
    }
}

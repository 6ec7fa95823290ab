import ArgumentParser
import Boot
import OCI

/// `runsc list`: the containers in the state directory, each with its status
/// as its sandbox reports it ("stopped" when the sandbox is gone).
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List containers.")

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("f"), .long], help: "Output format: table or json.")
    var format: OutputFormat = .table

    @Flag(name: [.customShort("q"), .long], help: "Print only the container IDs.")
    var quiet = false

    func run() throws {
        _ = try global.configure()
        let store = try global.store()
        let states = try store.list().map { recorded -> ContainerState in
            guard let handle = try? ContainerHandle.open(recorded.id, in: store),
                  let current = try? handle.currentState() else { return recorded }
            return current.container
        }
        if quiet {
            for state in states { print(state.id) }
            return
        }
        switch format {
        case .json:
            let items = try states.map { String(decoding: try $0.encodedJSON(), as: UTF8.self).trimmingTrailingNewlines() }
            print("[" + items.joined(separator: ",\n") + "]")
        case .table:
            print(ListCommand.table(states), terminator: "")
        }
    }

    /// Columns padded to their widest cell, as runc lays them out.
    static func table(_ states: [ContainerState]) -> String {
        let rows = [["ID", "PID", "STATUS", "BUNDLE"]]
            + states.map { [$0.id, String($0.pid ?? 0), $0.status.rawValue, $0.bundle] }
        var widths = [Int](repeating: 0, count: 4)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 3)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}

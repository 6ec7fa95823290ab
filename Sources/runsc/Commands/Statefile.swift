import ArgumentParser
import FoundationEssentials
import State

/// `runsc statefile`: what an image holds, like gVisor's `runsc statefile`:
/// the manifest, each file's storage, and the object graph by type. Reading
/// it checks every frame, so this is also how to verify an image by hand.
struct StatefileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statefile", abstract: "Print a checkpoint image's manifest and a summary of its contents.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Argument(help: ArgumentHelp("The image directory.", valueName: "image"))
    var image: String

    /// Everything `--json` prints.
    struct Report: Codable {
        var image: ImageSummary
        var state: StateSummary
    }

    func run() throws {
        _ = try global.configure()
        let reader = try ImageReader(directory: image)
        let state = try StateSummary(bytes: reader.readState())
        try reader.verify()
        let report = Report(image: reader.summary, state: state)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.dateEncodingStrategy = .iso8601
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(Self.text(report))
        }
    }

    static func text(_ report: Report) -> String {
        let manifest = report.image.manifest
        var lines = [report.image.description, ""]
        lines.append("runtime \(manifest.runtimeVersion), \(manifest.architecture), page size \(manifest.pageSize), "
                     + "created \(manifest.created.formatted(.iso8601))")
        lines.append("containers: " + manifest.containerIDs.joined(separator: ", "))
        if !manifest.cpuFeatures.isEmpty {
            lines.append("cpu features: " + manifest.cpuFeatures.joined(separator: " "))
        }
        for (key, value) in manifest.metadata.sorted(by: { $0.key < $1.key }) {
            lines.append("\(key): \(value)")
        }
        let state = report.state
        lines.append("")
        lines.append("object graph: format \(state.formatVersion), root \(state.rootType), "
                     + "\(state.objectCount) objects, \(state.encodedBytes) bytes")
        let nameWidth = max(state.types.map(\.name.count).max() ?? 0, 4)
        lines.append(pad("type", nameWidth) + "  " + pad("kind", 6) + "  " + pad("objects", 9) + "  bytes")
        for entry in state.types {
            lines.append(pad(entry.name, nameWidth) + "  " + pad(entry.role, 6) + "  "
                         + pad(entry.role == "object" ? String(entry.objects) : "-", 9) + "  "
                         + (entry.role == "object" ? String(entry.bytes) : "-"))
        }
        return lines.joined(separator: "\n")
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}

import ArgumentParser
import Boot
import FoundationEssentials

/// `runsc features`: the OCI features document, as `runc features` prints it
/// (indented JSON), for callers that ask a runtime what it supports.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features", abstract: "Print the runtime's OCI features document.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        _ = try global.configure()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(Features.current), as: UTF8.self))
    }
}

import ArgumentParser
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc statefile`: describe a checkpoint image (its manifest and a summary of the object graph).
struct StatefileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statefile", abstract: "Print a checkpoint image's manifest and a summary of its contents.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Argument(help: ArgumentHelp("The image directory.", valueName: "image"))
    var image: String

    func run() throws {
        _ = try global.configure()
        var info = stat()
        guard stat(image, &info) == 0 else { throw RunscError("statefile: \(image): no such file or directory") }
        throw RunscError.notBuilt("statefile", "the image reader is not wired to the State layer")
    }
}

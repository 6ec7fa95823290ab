import ArgumentParser
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `runsc spec`: write a default `config.json` to start a bundle from.
struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec", abstract: "Write a default config.json for a new bundle.",
        discussion: """
            The config runs CMD (default: sh) from the rootfs directory next to it, like `runc spec`. \
            An existing config.json is never overwritten.
            Example: runsc spec --bundle mybundle -- /bin/echo hello
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customShort("b"), .long], help: ArgumentHelp("Where to write config.json (default: current directory).", valueName: "dir"))
    var bundle: String?

    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command to run, after `--`.", valueName: "cmd"))
    var command: [String] = []

    func run() throws {
        let logger = try global.configure()
        let directory = bundle ?? "."
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw RunscError("spec: bundle directory \(directory) does not exist")
        }
        let path = directory + "/" + Bundle.configFileName
        let bytes = try Spec.makeDefault(args: command).encodedJSON()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            if errno == EEXIST { throw RunscError("spec: \(path) already exists; remove it first") }
            throw RunscError("spec: cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                unlink(path)
                throw RunscError("spec: cannot write \(path): \(reason)")
            }
            offset += count
        }
        logger.debug("spec: wrote \(path)")
    }
}

import ArgumentParser
import Logging
import OCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The options every runsc and runc command accepts.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Directory for container state (default: /var/run/runsc as root, else $XDG_RUNTIME_DIR/runsc).",
        valueName: "dir"))
    var root: String?

    @Option(help: ArgumentHelp("Write the log to this file (default: no log unless --debug, then stderr).", valueName: "file"))
    var log: String?

    @Option(help: "The log's line format: text or json (runc's, which conmon reads).")
    var logFormat: LogSetup.Format = .text

    @Flag(help: "Log at debug level.")
    var debug = false

    @Flag(help: "linux.cgroupsPath is systemd's \"slice:prefix:name\" (made with cgroupfs where systemd would put it, as systemd does not run here).")
    var systemdCgroup = false

    @Option(help: ArgumentHelp("How application threads run; only 'ptrace' exists so far.", valueName: "name"))
    var platform = "ptrace"

    static let platforms = ["ptrace"]

    /// Checks the options and sets up logging; every command calls it first.
    func configure() throws -> Logger {
        guard Self.platforms.contains(platform) else {
            throw RunscError("unknown platform \"\(platform)\" (available: \(Self.platforms.joined(separator: ", ")))")
        }
        try LogSetup.bootstrap(file: log, debug: debug, format: logFormat)
        var logger = Logger(label: "runsc")
        logger.logLevel = debug ? .debug : .info
        return logger
    }

    /// The `--root` state directory: runc's defaults, so that tools written for runc find containers.
    func stateRoot() throws -> String {
        if let root {
            guard !root.isEmpty else { throw RunscError("--root must not be empty") }
            return root
        }
        if geteuid() == 0 { return "/var/run/runsc" }
        if let runtimeDirectory = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !runtimeDirectory.isEmpty {
            return runtimeDirectory + "/runsc"
        }
        throw RunscError("--root is not given and $XDG_RUNTIME_DIR is not set; pass --root DIR")
    }

    func store() throws -> ContainerStore {
        ContainerStore(root: try stateRoot())
    }
}

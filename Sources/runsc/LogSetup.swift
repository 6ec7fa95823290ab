import ArgumentParser
import FoundationEssentials
import Boot
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Routes swift-log output for this process: to `--log FILE`, to stderr with
/// `--debug` alone, or nowhere, so stdout stays clean for JSON and container output.
enum LogSetup {
    /// `--log-format`: runc's two forms of a log line.
    enum Format: String, ExpressibleByArgument, CaseIterable, Sendable {
        case text
        /// One JSON object a line, `{"level":..,"msg":..,"time":..}` and the metadata, as runc writes for conmon.
        case json
    }

    /// The PID log lines carry: the host's, which the sandbox, the init of its
    /// own PID namespace, reads from the host's /proc at bootstrap (before it leaves it).
    static let processID: Int32 = SandboxProcess.current()?.pid ?? getpid()

    static func bootstrap(file: String?, debug: Bool, format: Format = .text) throws {
        _ = processID
        let level: Logger.Level = debug ? .debug : .info
        if let file {
            let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw RunscError("cannot open log file \(file): \(String(cString: strerror(errno)))")
            }
            LoggingSystem.bootstrap { label in FileLogHandler(label: label, fd: fd, logLevel: level, format: format) }
        } else if debug {
            LoggingSystem.bootstrap { label in FileLogHandler(label: label, fd: STDERR_FILENO, logLevel: level, format: format) }
        } else {
            LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }
        }
    }
}

/// One line per message, written with a single write(2) so lines from the sandbox and the CLI do not interleave.
struct FileLogHandler: LogHandler {
    let label: String
    let fd: Int32
    var logLevel: Logger.Level
    let format: LogSetup.Format
    var metadata: Logger.Metadata = [:]

    init(label: String, fd: Int32, logLevel: Logger.Level, format: LogSetup.Format = .text) {
        self.label = label
        self.fd = fd
        self.logLevel = logLevel
        self.format = format
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let text: String
        switch format {
        case .text:
            let fields = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
            text = "\(Self.timestamp()) \(event.level) \(label) [\(LogSetup.processID)]: \(event.message)\(fields)\n"
        case .json:
            var object = merged.mapValues { "\($0)" }
            object["level"] = "\(event.level)"
            object["msg"] = "\(event.message)"
            object["time"] = Self.timestamp()
            object["pid"] = "\(LogSetup.processID)"
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let bytes = try? encoder.encode(object) else { return }
            text = String(decoding: bytes, as: UTF8.self) + "\n"
        }
        _ = text.utf8CString.withUnsafeBufferPointer { buffer in
            write(fd, buffer.baseAddress, buffer.count - 1)
        }
    }

    /// UTC, to the microsecond: logs from several hosts (a migration) sort together.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + "\(pad(Int32(now.tv_nsec / 1000), 6))Z"
    }
}

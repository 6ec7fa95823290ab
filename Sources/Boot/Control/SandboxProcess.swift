import FoundationEssentials
import Glibc

/// Which host process serves a container, recorded in `sandbox.json` beside
/// its state file. A PID alone cannot tell a live sandbox from a new process
/// that reused the number after the sandbox was killed; the PID with the
/// process's start time (field 22 of /proc/PID/stat, in clock ticks since
/// boot) can.
public struct SandboxProcess: Codable, Sendable, Equatable {
    public static let fileName = "sandbox.json"

    public var pid: Int32
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// This process, as a sandbox records itself: by its PID in the host's
    /// namespace, which the host's /proc names `self` (its getpid() is 1 in
    /// the PID namespace it is the init of).
    public static func current() -> SandboxProcess? {
        guard let text = readSmallFile("/proc/self/stat"), let space = text.firstIndex(of: " "),
              let pid = Int32(text[..<space]) else { return nil }
        return startTime(of: pid).map { SandboxProcess(pid: pid, startTime: $0) }
    }

    /// Whether this very process still runs (not a zombie, not a reused PID).
    public var isAlive: Bool {
        guard let stat = SandboxProcess.stat(of: pid) else { return false }
        return stat.startTime == startTime && stat.state != "Z" && stat.state != "X"
    }

    /// The start time of `pid`, or nil if there is no such process.
    public static func startTime(of pid: Int32) -> UInt64? {
        stat(of: pid)?.startTime
    }

    /// The state letter and start time from /proc/PID/stat. The command name
    /// (field 2) may hold spaces and parentheses, so fields are counted after
    /// its last ')'.
    static func stat(of pid: Int32) -> (state: Character, startTime: UInt64)? {
        guard pid > 0, let text = readSmallFile("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }

    /// Reads the record in `directory` (`name`: another process recorded beside the sandbox); nil if it is missing or unreadable.
    public static func read(from directory: String, name: String = fileName) -> SandboxProcess? {
        guard let text = readSmallFile(directory + "/" + name) else { return nil }
        return try? JSONDecoder().decode(SandboxProcess.self, from: Data(text.utf8))
    }

    /// Writes the record into `directory` atomically (temporary file, rename).
    public func write(to directory: String, name: String = SandboxProcess.fileName) throws(ControlError) {
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(self))
        } catch {
            throw .badMessage("cannot encode the sandbox record: \(error)")
        }
        let path = directory + "/" + name
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(operation: "create \(temporary)", errno: errno) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + offset }, bytes.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else {
                let code = errno
                close(fd)
                throw .io(operation: "write \(temporary)", errno: code)
            }
            offset += written
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw .io(operation: "rename \(temporary)", errno: errno) }
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 16 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

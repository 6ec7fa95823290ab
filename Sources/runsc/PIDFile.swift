#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension CommandSupport {
    /// Writes `--pid-file` atomically (temporary name, rename), so a watcher never reads a partial PID.
    static func writePIDFile(_ path: String, pid: Int32) throws {
        let temporary = path + ".runsc-tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunscError("--pid-file \(path): \(SandboxLauncher.errnoText())") }
        let bytes = Array(String(pid).utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            let reason = SandboxLauncher.errnoText()
            unlink(temporary)
            throw RunscError("--pid-file \(path): \(reason)")
        }
    }
}

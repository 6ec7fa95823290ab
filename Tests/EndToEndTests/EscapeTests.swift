import Foundation
import Glibc
import Testing

/// Escape attempts from inside a container that are contained today, kept
/// so they stay contained: path traversal, symlinks, /proc/self/root and
/// /proc/1/root, a chroot break-out, a descriptor sweep, ptrace,
/// process_vm_readv and /proc of a host PID, kill(-1), mknod of host
/// devices, and a host unix socket seen through a bind mount. There is no
/// native run to compare with (natively most of them escape): every attempt
/// must print "contained", and the host must show nothing reached it.
@Suite struct EscapeTests {
    static let attempts = [
        "descriptor sweep", "the marker by its host path", "dot-dot above the root", "/proc/self/root",
        "/proc/1/root", "/proc/self/cwd", "chdir .. from the root", "an absolute symlink", "a relative symlink",
        "openat from the root's descriptor", "chroot break-out", "/proc/self/root names the root",
        "ptrace of a host PID", "process_vm_readv of a host PID", "/proc of a host PID",
        "kill(-1, SIGKILL) stays inside", "mknod of a host disk", "mknod of /dev/mem",
        "connect to a host unix socket",
    ]

    @Test func everyAttemptIsContainedAndTheHostIsUntouched() throws {
        let sandbox = try SandboxRun(["/bin/escape_cases"], start: false)
        try FileManager.default.copyItem(atPath: try Fixtures.binary("escape_cases"),
                                         toPath: sandbox.bundle + "/rootfs/bin/escape_cases")
        let marker = sandbox.workspace.path + "/marker"
        let secret = "host secret\n"
        try secret.write(toFile: marker, atomically: true, encoding: .utf8)
        let socketDirectory = sandbox.workspace.path + "/sockets"
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        let listener = try Self.listen(at: socketDirectory + "/host.sock")
        defer { close(listener) }
        try BindMountTests.addBindMounts([("/hostdir", socketDirectory, ["rw"])], to: sandbox.bundle)

        let host = Process()
        host.executableURL = URL(fileURLWithPath: "/bin/sleep")
        host.arguments = ["60"]
        try host.run()
        defer { kill(host.processIdentifier, SIGKILL); host.waitUntilExit() }

        try SandboxRun.setProcess(in: sandbox.bundle + "/config.json",
                                  args: ["/bin/escape_cases", marker, String(host.processIdentifier), "/hostdir"],
                                  env: ["PATH=/bin"], user: 0)
        let result = try sandbox.start().finish(timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = Self.attempts.map { "\($0): contained" } + ["done"]
        #expect(result.stdout.split(separator: "\n").map(String.init) == expected, "\(result.stdout)")

        #expect(kill(host.processIdentifier, 0) == 0, "the host process outlived kill(-1)")
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == secret)
        #expect(accept(listener, nil, nil) == -1 && errno == EAGAIN, "the host socket got no connection")
    }

    /// A non-blocking listening unix socket at `path` on the host.
    static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw SetupError("socket path too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 4) == 0 else {
            close(fd)
            throw SetupError("bind or listen \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}

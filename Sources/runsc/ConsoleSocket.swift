import CShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A terminal for a container process (OCI `terminal: true`), made as runc
/// makes one: a new pty pair on the host whose master goes to the caller over
/// the `--console-socket` Unix socket (one message, the master in SCM_RIGHTS,
/// what conmon and containerd read), and whose slave becomes the process's
/// stdin, stdout and stderr. Inside the sandbox the Sentry keeps the
/// terminal's job control (HostTerminal); the host's line discipline does the rest.
enum ConsoleSocket {
    /// What runc sends as the message's bytes: the master's name.
    static let masterName = "/dev/ptmx"

    /// <asm-generic/ioctls.h>: unlock the slave; open the slave from the master (Linux 4.13).
    static let TIOCSPTLCK: UInt = 0x4004_5431
    static let TIOCGPTPEER: UInt = 0x5441

    /// Opens a pty pair, sends the master to the socket at `path` and returns the slave (read-write, close-on-exec).
    static func sendNewTerminal(to path: String) throws -> Int32 {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw RunscError("cannot open a pseudo-terminal (/dev/ptmx): \(SandboxLauncher.errnoText())") }
        defer { close(master) }
        var unlock: Int32 = 0
        guard ioctl(master, TIOCSPTLCK, &unlock) == 0 else {
            throw RunscError("cannot unlock the pseudo-terminal: \(SandboxLauncher.errnoText())")
        }
        let slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else { throw RunscError("cannot open the pseudo-terminal's slave: \(SandboxLauncher.errnoText())") }
        do {
            try send(master, to: path)
        } catch {
            close(slave)
            throw error
        }
        return slave
    }

    private static func send(_ master: Int32, to path: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw RunscError("--console-socket \(path): not a Unix socket path (1 to \(capacity - 1) bytes)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
        let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw RunscError("--console-socket \(path): \(SandboxLauncher.errnoText())") }
        defer { close(socket) }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw RunscError("--console-socket \(path): \(SandboxLauncher.errnoText())") }
        let message = Array(masterName.utf8)
        var fds = [master]
        let sent = message.withUnsafeBytes { cshim_send_with_fds(socket, $0.baseAddress, $0.count, &fds, 1) }
        guard sent >= 0 else {
            throw RunscError("--console-socket \(path): cannot send the terminal: \(String(cString: strerror(Int32(truncatingIfNeeded: -sent))))")
        }
    }
}

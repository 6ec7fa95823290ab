import CShim
import FoundationEssentials
import Glibc
import Sentry
import Synchronization

/// The AF_UNIX stream socket of one container, and length-prefixed frames over it.
///
/// sun_path holds 107 bytes, and a `--root` path plus a 1024-byte container
/// ID does not fit: such paths are bound and connected to by their relative
/// name from the container directory, made the working directory for the
/// call (the sandbox, pivoted into its own root, has no /proc/self/fd to
/// name it by; neither it nor the CLI makes relative path calls meanwhile).
public enum ControlSocket {
    /// Creates, binds (mode 0600) and listens on the socket in `directory`.
    public static func listen(in directory: String) throws(ControlError) -> Int32 {
        let path = directory + "/" + ControlProtocol.socketName
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
        do throws(ControlError) {
            try withAddress(of: path) { (address, length) throws(ControlError) in
                // umask makes the socket 0600 from the start, with no window where others could connect.
                let previous = umask(0o177)
                let result = bind(fd, address, length)
                let bindErrno = errno
                umask(previous)
                guard result == 0 else { throw .io(operation: "bind \(path)", errno: bindErrno) }
            }
            guard chmod(path, 0o600) == 0 else { throw .io(operation: "chmod \(path)", errno: errno) }
            guard Glibc.listen(fd, 16) == 0 else { throw .io(operation: "listen", errno: errno) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Connects to the socket in `directory`; `timeout` bounds the connect
    /// (SO_SNDTIMEO applies to AF_UNIX connect) and every later send and receive.
    public static func connect(in directory: String, timeout seconds: Int) throws(ControlError) -> Int32 {
        let path = directory + "/" + ControlProtocol.socketName
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io(operation: "socket", errno: errno) }
        do throws(ControlError) {
            try setTimeout(fd, SO_SNDTIMEO, seconds: seconds)
            try setTimeout(fd, SO_RCVTIMEO, seconds: seconds)
            try withAddress(of: path) { (address, length) throws(ControlError) in
                while Glibc.connect(fd, address, length) != 0 {
                    switch errno {
                    case EINTR: continue
                    case ENOENT, ECONNREFUSED, ENOTDIR: throw .notListening(socket: path, errno: errno)
                    case EAGAIN, EINPROGRESS, ETIMEDOUT: throw .timedOut(operation: "connect", seconds: seconds)
                    default: throw .io(operation: "connect \(path)", errno: errno)
                    }
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Sets a send or receive timeout; 0 waits forever.
    public static func setTimeout(_ fd: Int32, _ option: Int32, seconds: Int) throws(ControlError) {
        var value = timeval(tv_sec: seconds, tv_usec: 0)
        guard setsockopt(fd, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw .io(operation: "setsockopt", errno: errno)
        }
    }

    /// Writes one frame: the payload's length (4 bytes, big-endian), then the
    /// payload; `files` (SCM_RIGHTS) go with its first bytes.
    public static func writeFrame(_ fd: Int32, _ payload: [UInt8], files: [Int32] = []) throws(ControlError) {
        guard payload.count <= ControlProtocol.maximumFrameSize else { throw .badFrameLength(payload.count) }
        guard files.count <= Int(CSHIM_MAX_PASSED_FDS) else { throw .badMessage("\(files.count) descriptors in one frame") }
        let length = UInt32(payload.count)
        var bytes: [UInt8] = [UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                              UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        bytes += payload
        var offset = 0
        while offset < bytes.count {
            let attached = offset == 0 ? files : []
            let sent = bytes.withUnsafeBytes { buffer in
                attached.withUnsafeBufferPointer { descriptors in
                    cshim_send_with_fds(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset,
                                        descriptors.baseAddress, Int32(descriptors.count))
                }
            }
            if sent < 0 {
                let code = Int32(truncatingIfNeeded: -sent)
                if code == EAGAIN || code == EWOULDBLOCK { throw .timedOut(operation: "send", seconds: timeout(fd, SO_SNDTIMEO)) }
                if code == EPIPE || code == ECONNRESET { throw .closed }
                throw .io(operation: "send", errno: code)
            }
            offset += sent
        }
    }

    /// Reads one frame; fails on a short read or a length over the limit.
    /// Descriptors that came with it are appended to `files`, which the caller
    /// owns (and closes) even when this throws.
    public static func readFrame(_ fd: Int32, files: inout [Int32]) throws(ControlError) -> [UInt8] {
        let header = try readExactly(fd, 4, files: &files)
        let length = header.reduce(0) { ($0 << 8) | Int($1) }
        guard length > 0, length <= ControlProtocol.maximumFrameSize else { throw .badFrameLength(length) }
        return try readExactly(fd, length, files: &files)
    }

    /// Encodes `payload` in an envelope of our version and sends it as one frame.
    public static func send<Payload: Codable & Sendable>(_ payload: Payload, on fd: Int32,
                                                         files: [Int32] = []) throws(ControlError) {
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(ControlEnvelope(payload)))
        } catch {
            throw .badMessage("cannot encode: \(error)")
        }
        try writeFrame(fd, bytes, files: files)
    }

    /// Reads one frame and decodes it, refusing another protocol version;
    /// descriptors sent with it are closed.
    public static func receive<Payload: Codable & Sendable>(_ type: Payload.Type, on fd: Int32) throws(ControlError) -> Payload {
        var files: [Int32] = []
        defer { for file in files { close(file) } }
        return try receive(type, on: fd, files: &files)
    }

    /// Reads one frame and decodes it; descriptors sent with it are appended
    /// to `files`, which the caller owns even when this throws.
    public static func receive<Payload: Codable & Sendable>(_ type: Payload.Type, on fd: Int32,
                                                            files: inout [Int32]) throws(ControlError) -> Payload {
        let bytes = try readFrame(fd, files: &files)
        let version: Int
        do {
            version = try JSONDecoder().decode(VersionOnly.self, from: Data(bytes)).version
        } catch {
            throw .badMessage("no protocol version: \(error)")
        }
        guard version == ControlProtocol.version else {
            throw .versionMismatch(ours: ControlProtocol.version, theirs: version)
        }
        do {
            return try JSONDecoder().decode(ControlEnvelope<Payload>.self, from: Data(bytes)).payload
        } catch {
            throw .badMessage("\(error)")
        }
    }

    private struct VersionOnly: Decodable {
        var version: Int
    }

    private static func readExactly(_ fd: Int32, _ count: Int, files: inout [Int32]) throws(ControlError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        var arrived = [Int32](repeating: -1, count: Int(CSHIM_MAX_PASSED_FDS))
        while offset < count {
            var arrivedCount: Int32 = 0
            let received = bytes.withUnsafeMutableBytes { buffer in
                arrived.withUnsafeMutableBufferPointer { descriptors in
                    cshim_recv_with_fds(fd, buffer.baseAddress.map { $0 + offset }, count - offset,
                                        descriptors.baseAddress, &arrivedCount)
                }
            }
            files += arrived.prefix(Int(max(0, arrivedCount)))
            if received < 0 {
                let code = Int32(truncatingIfNeeded: -received)
                if code == EAGAIN || code == EWOULDBLOCK {
                    throw .timedOut(operation: "receive", seconds: timeout(fd, SO_RCVTIMEO))
                }
                if code == ECONNRESET { throw .closed }
                throw .io(operation: "receive", errno: code)
            }
            if received == 0 { throw .closed }
            offset += received
        }
        return bytes
    }

    private static func timeout(_ fd: Int32, _ option: Int32) -> Int {
        var value = timeval()
        var length = socklen_t(MemoryLayout<timeval>.size)
        guard getsockopt(fd, SOL_SOCKET, option, &value, &length) == 0 else { return 0 }
        return value.tv_sec
    }

    /// Calls `body` with a sockaddr_un for `path`, or for its last name from
    /// its directory, made the working directory for the call, when the path
    /// is too long for sun_path (bind and connect take no directory FD, and
    /// the sandbox has no /proc/self/fd to name one by).
    private static func withAddress(
        of path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(ControlError) -> Void
    ) throws(ControlError) {
        try workingDirectoryLock.withLock { _ throws(ControlError) in try withAddressHoldingLock(of: path, body) }
    }

    private static func withAddressHoldingLock(
        of path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws(ControlError) -> Void
    ) throws(ControlError) {
        var previousDirectory: Int32 = -1
        defer {
            if previousDirectory >= 0 {
                _ = fchdir(previousDirectory)
                close(previousDirectory)
            }
        }
        var effective = path
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        if path.utf8.count >= capacity {
            let directory = String(path.utf8.prefix(path.utf8.count - ControlProtocol.socketName.utf8.count - 1)) ?? path
            let directoryFD = open(directory, Int32(bitPattern: LinuxFile.pathOnly) | O_DIRECTORY | O_CLOEXEC)
            guard directoryFD >= 0 else { throw .notListening(socket: path, errno: errno) }
            defer { close(directoryFD) }
            previousDirectory = open(".", Int32(bitPattern: LinuxFile.pathOnly) | O_DIRECTORY | O_CLOEXEC)
            guard previousDirectory >= 0, fchdir(directoryFD) == 0 else {
                throw .notListening(socket: path, errno: errno)
            }
            effective = ControlProtocol.socketName
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(effective.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() where index < buffer.count - 1 { buffer[index] = byte }
        }
        try withUnsafePointer(to: &address) { pointer throws(ControlError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw throws(ControlError) in
                try body(raw, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}

/// Held while this process's working directory is changed for a call
/// (ControlSocket's long socket paths, a checkpoint's image writing), so no
/// two change it at once and each puts it back before the next.
let workingDirectoryLock = Mutex<Void>(())

import Glibc
import State

/// The container's stdin, stdout or stderr: host FDs 256, 257 and 258, where
/// the Loader put them and where a restore puts the new ones. The number is
/// saved (the stable exception to "never save host FDs"); the offset is the
/// host file's own, so a log appended to across a restore stays whole.
/// Blocking waits, poll and epoll wait on the host FD through the host
/// poller's queue for it, so a checkpoint can interrupt a read of an idle
/// stdin and nothing spins.
///
/// A process `runsc exec` starts has runsc exec's own stdio, passed over the
/// control socket at any host number (`passed`): this description owns that
/// FD and closes it when released. It cannot outlive the sandbox, so it is
/// saved as disconnected (`disconnectedFD`): after a restore it reads end of
/// file and a write fails with EIO, as a hung-up terminal's. The one
/// exception is a kernel restored in the host process that saved it (the
/// save/restore test mode), where the FD is still open: the image names it
/// with this process's token, and the restored description takes a
/// duplicate (the thrown-away kernel closes its own, `closePassedDescriptor`).
public final class HostStdioFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "hostfs.StdioFile" }
    override public class var notSaved: Set<String> { super.notSaved.union(["ownsHostFD"]) }

    /// Names this host process in an image (see the type's comment); never 0, the "not passed" value.
    private static let hostProcessToken = UInt64.random(in: 1...UInt64.max)

    public static let standardInput: Int32 = 256
    public static let standardOutput: Int32 = 257
    public static let standardError: Int32 = 258

    /// The host FD number saved for a passed FD, which no restored sandbox has.
    public static let disconnectedFD: Int32 = -1

    public private(set) var hostFD: Int32 = standardInput
    /// Host-only: the FD was passed to this sandbox for this description
    /// alone (`passed`), which closes it when released; saved as disconnected.
    private var ownsHostFD = false
    /// The terminal the host FD is, when the process was given one (OCI
    /// `terminal: true`); the three stdio descriptions of a process share it.
    public private(set) var hostTerminal: HostTerminal?

    public required init() { super.init() }

    public init(hostFD: Int32, location: VirtualPath? = nil, flags: UInt32) {
        self.hostFD = hostFD
        super.init(location: location, flags: flags)
    }

    /// A description owning `hostFD`, which was passed to the sandbox (a `runsc exec`'s stdio).
    public static func passed(hostFD: Int32, flags: UInt32, terminal: HostTerminal? = nil) -> HostStdioFile {
        let file = HostStdioFile(hostFD: hostFD, flags: flags)
        file.ownsHostFD = true
        file.hostTerminal = terminal
        return file
    }

    override public func released() { closePassedDescriptor() }

    /// Closes a passed FD now, for a kernel that is thrown away (Kernel.discard):
    /// the description is never used again, and the pipe of runsc exec it
    /// writes to must not stay open in a kernel that never runs again.
    func closePassedDescriptor() {
        guard ownsHostFD else { return }
        HostPoller.shared.forget(hostFD)
        close(hostFD)
        ownsHostFD = false
        hostFD = Self.disconnectedFD
    }

    /// Whether the description lost its host file in a checkpoint (see the type's comment).
    var isDisconnected: Bool { hostFD == Self.disconnectedFD }

    /// The three stdio descriptions for FDs 0, 1, 2 of the init process.
    /// With `terminal`, the three are that terminal, as a pty slave runc opens read-write for each.
    public static func standardFiles(terminal: HostTerminal? = nil) -> [FileDescription] {
        let files = terminal == nil
            ? [HostStdioFile(hostFD: standardInput, flags: LinuxFile.readOnly),
               HostStdioFile(hostFD: standardOutput, flags: LinuxFile.writeOnly),
               HostStdioFile(hostFD: standardError, flags: LinuxFile.writeOnly)]
            : [standardInput, standardOutput, standardError].map { HostStdioFile(hostFD: $0, flags: LinuxFile.readWrite) }
        for file in files { file.hostTerminal = terminal }
        return files
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("hostFD", ownsHostFD ? Self.disconnectedFD : hostFD)
        try sink.save("hostTerminal", hostTerminal)
        try sink.save("passedHostFD", ownsHostFD ? hostFD : Self.disconnectedFD)
        try sink.save("passedIn", ownsHostFD ? Self.hostProcessToken : 0)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        hostTerminal = try source.load("hostTerminal", default: nil)
        let number: Int32 = try source.load("hostFD")
        guard (Self.standardInput...Self.standardError).contains(number) || number == Self.disconnectedFD else {
            throw StateError.invalidValue("stdio host FD \(number) is not 256, 257, 258 or -1", field: "hostFD")
        }
        hostFD = number
        let passed: Int32 = try source.load("passedHostFD", default: Self.disconnectedFD)
        let token: UInt64 = try source.load("passedIn", default: 0)
        // Restored in the process that saved it: the passed FD is still open here.
        if number == Self.disconnectedFD, passed >= 0, token == Self.hostProcessToken {
            let duplicate = fcntl(passed, F_DUPFD_CLOEXEC, 0)
            if duplicate >= 0 {
                hostFD = duplicate
                ownsHostFD = true
            }
        }
    }

    override public var isSeekable: Bool { true }

    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        if isDisconnected { return [] }
        if let position { return try Host.read(hostFD, count: count, at: position) }
        return try waitingOnHost(for: .readable, waiter: waiter) { () throws(SyscallError) -> [UInt8]? in
            do throws(SyscallError) {
                return try Host.read(hostFD, count: count, at: nil)
            } catch .eagain {
                return nil
            }
        }
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        if isDisconnected { throw .eio }
        if let position { return try Host.write(hostFD, bytes, at: position) }
        var written = 0
        while written < bytes.count {
            do throws(SyscallError) {
                written += try waitingOnHost(for: .writable, waiter: waiter) { () throws(SyscallError) -> Int? in
                    do throws(SyscallError) {
                        return try Host.write(hostFD, Array(bytes[written...]), at: nil)
                    } catch .eagain {
                        return nil
                    }
                }
            } catch {
                if written > 0 { return written }
                throw error
            }
        }
        return written
    }

    /// Runs `attempt` once the host FD has one of `events` (nil: it had not
    /// after all); blocks on the host poller's queue for the FD meanwhile,
    /// or throws EAGAIN if non-blocking. Without a waiter on a blocking
    /// description (an in-Sentry read) the host call blocks; a non-blocking
    /// one (which the syscalls pass without a waiter) is looked at first,
    /// since the host FD itself stays blocking.
    private func waitingOnHost<T>(for events: PollEvents, waiter: Waiter?,
                                  _ attempt: () throws(SyscallError) -> T?) throws(SyscallError) -> T {
        var entry: WaitEntry?
        defer { if let entry { HostPoller.shared.unregister(entry, hostFD: hostFD) } }
        while true {
            waiter?.reset()
            if (waiter == nil && !isNonBlocking) || !readiness(for: events).isEmpty, let result = try attempt() {
                return result
            }
            if isNonBlocking { throw .eagain }
            guard let waiter else { throw .eagain }
            if entry == nil {
                let registered = waiter.entry(for: events.union(.unmaskable))
                HostPoller.shared.register(registered, hostFD: hostFD)
                entry = registered
                continue
            }
            try waiter.block()
        }
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 {
        Int64(try Host.retrying { lseek(hostFD, off_t(offset), whence) })
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        Host.attributes(from: try Host.stat(hostFD))
    }

    override public func truncate(to length: Int64) throws(SyscallError) {
        _ = try Host.retrying { ftruncate(hostFD, off_t(length)) }
    }

    override public func sync() throws(SyscallError) {
        if fsync(hostFD) < 0, errno != EINVAL, errno != EROFS { throw Host.lastError }
    }

    override public func readableByteCount() throws(SyscallError) -> Int {
        var count: Int32 = 0
        _ = try Host.retrying { ioctl(hostFD, UInt(FIONREAD), &count) }
        return Int(count)
    }

    /// The host file's own readiness (a pipe, terminal or file at 0-2), asked without waiting.
    override public func readiness(for mask: PollEvents) -> PollEvents {
        // A hung-up terminal: reads (end of file) and writes (EIO) do not block.
        if isDisconnected { return mask.intersection([.input, .output]).union(.hangUp) }
        let ready = Host.readyEvents(hostFD, events: Int16(truncatingIfNeeded: mask.rawValue))
        let events = PollEvents(rawValue: UInt32(UInt16(bitPattern: ready))).intersection(mask.union(.unmaskable))
        // Whoever looked will wait: the poller's one-shot arm may be spent.
        if events.isEmpty { HostPoller.shared.rearm(hostFD) }
        return events
    }

    /// A host pipe, socket or terminal polls; a host regular file does not (as Linux's).
    override public var supportsPoll: Bool {
        if isDisconnected { return true }
        guard let mode = try? Host.stat(hostFD).st_mode else { return false }
        return mode & S_IFMT != S_IFREG && mode & S_IFMT != S_IFDIR
    }

    override public func eventRegister(_ entry: WaitEntry) {
        if !isDisconnected { HostPoller.shared.register(entry, hostFD: hostFD) }
    }

    override public func eventUnregister(_ entry: WaitEntry) {
        if !isDisconnected { HostPoller.shared.unregister(entry, hostFD: hostFD) }
    }

    override public var hostTerminalFD: Int32? { isatty(hostFD) == 1 ? hostFD : nil }

    override public var terminal: HostTerminal? { hostTerminal }

    override public var stopsBackgroundWrites: Bool {
        var settings = termios()
        return tcgetattr(hostFD, &settings) == 0 && settings.c_lflag & UInt32(TOSTOP) != 0
    }
}

extension HostStdioFile {
    /// A new description of the same host file with `flags` (open of
    /// /proc/[pid]/fd/N, /dev/stdin): a passed FD is duplicated, so each
    /// description owns its own; the container's 256-258 are shared, as
    /// the descriptions the Loader made share them.
    func reopened(flags: UInt32) throws(SyscallError) -> HostStdioFile {
        guard ownsHostFD else {
            let file = HostStdioFile(hostFD: hostFD, flags: flags)
            file.hostTerminal = hostTerminal
            return file
        }
        let duplicate = fcntl(hostFD, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { throw Host.lastError }
        return .passed(hostFD: duplicate, flags: flags, terminal: hostTerminal)
    }
}

/// What /proc/[pid]/fd/N of a host stdio description stands for when
/// opened (Linux reopens the host's pipe, socket, terminal or file): an
/// inode in no directory, with the host file's type, owner and mode for
/// the open's checks, whose opens are new descriptions of the same host
/// file. Saved with the stdio description it names (a path kept to it).
public final class HostStdioReopening: Inode, @unchecked Sendable { // `stdio` is set at creation or load only
    override public class var savedTypeName: String { "hostfs.StdioReopening" }

    private var stdio: HostStdioFile?

    static func reopening(_ stdio: HostStdioFile, filesystem: Filesystem) throws(SyscallError) -> HostStdioReopening {
        let attributes = try stdio.attributes()
        let inode = HostStdioReopening()
        inode.stdio = stdio
        inode.initialize(filesystem: filesystem, mode: attributes.mode, uid: attributes.uid, gid: attributes.gid)
        return inode
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("stdio", stdio)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        stdio = try source.load("stdio")
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        guard let stdio else { return try super.attributes() }
        return try stdio.attributes()
    }

    /// O_TRUNC (or truncate(2)) of a regular host file truncates the host's.
    override public func setAttributes(_ change: AttributeChange) throws(SyscallError) {
        guard let size = change.size, let stdio else { return try super.setAttributes(change) }
        try stdio.truncate(to: size)
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        guard let stdio else { throw .enxio }
        return try stdio.reopened(flags: flags)
    }
}

import State

/// The character devices a container gets in /dev, by what they do.
public enum DeviceKind: String, SavableValue, Sendable {
    case null, zero, full, random, urandom, tty

    /// Linux's major:minor for each (devices.txt).
    public var number: UInt64 {
        switch self {
        case .null: DeviceNumber.make(major: 1, minor: 3)
        case .zero: DeviceNumber.make(major: 1, minor: 5)
        case .full: DeviceNumber.make(major: 1, minor: 7)
        case .random: DeviceNumber.make(major: 1, minor: 8)
        case .urandom: DeviceNumber.make(major: 1, minor: 9)
        case .tty: DeviceNumber.make(major: 5, minor: 0)
        }
    }
}

/// A device node; opening it gives the device's file, wherever the node lives.
public final class DeviceInode: Inode, @unchecked Sendable { // guarded by Inode.lock
    override public class var savedTypeName: String { "devfs.DeviceInode" }
    public var kind = DeviceKind.null

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("kind", kind)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        kind = try source.load("kind")
    }

    override public func attributes() throws(SyscallError) -> FileAttributes {
        lock.withLock { _ in
            var result = baseAttributes()
            result.specialDevice = kind.number
            return result
        }
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        if kind == .tty {
            return HostStdioFile(hostFD: HostStdioFile.standardInput, location: location, flags: flags)
        }
        let file = DeviceFile(location: location, flags: flags)
        file.kind = kind
        return file
    }
}

/// An open /dev/null, /dev/zero, /dev/full, /dev/random or /dev/urandom.
public final class DeviceFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "devfs.DeviceFile" }
    public var kind = DeviceKind.null

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("kind", kind)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        kind = try source.load("kind")
    }

    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        switch kind {
        case .null, .tty: return []
        case .zero, .full: return [UInt8](repeating: 0, count: count)
        case .random, .urandom:
            var bytes = [UInt8](repeating: 0, count: count)
            Random.fill(&bytes)
            return bytes
        }
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        if kind == .full { throw .enospc }
        return bytes.count
    }

    /// Seeking a device succeeds and means nothing, as for Linux's null/zero.
    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 {
        guard (0...2).contains(whence) else { throw .einval }
        return 0
    }

    override public func readableByteCount() throws(SyscallError) -> Int { throw .enotty }

    /// Of these only /dev/random has a poll operation (random_fops).
    override public var supportsPoll: Bool { kind == .random }
}

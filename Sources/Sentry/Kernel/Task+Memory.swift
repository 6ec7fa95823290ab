/// A scatter/gather element as `readv`/`writev` take it.
public struct IOVec: Equatable, Sendable {
    public var base: UInt64
    public var length: UInt64

    public init(base: UInt64, length: UInt64) {
        self.base = base
        self.length = length
    }
}

/// Access to the task's application memory, for syscall handlers. Every call
/// is a memcpy through the Sentry's mapping of the MemoryFile; a bad address
/// is EFAULT, never a crash.
extension Task {
    /// Linux's UIO_MAXIOV.
    public static let maxIOVecs = 1024
    /// Linux's MAX_RW_COUNT: one read or write moves at most this much.
    public static let maxReadWriteCount: UInt64 = 0x7fff_f000
    /// PATH_MAX.
    public static let maxPathLength = 4096

    func memory() throws(SyscallError) -> MemoryManager {
        guard let mm else { throw .efault }
        return mm
    }

    /// Copies `count` bytes from application memory.
    public func copyIn(from address: UInt64, count: Int) throws(SyscallError) -> [UInt8] {
        try memory().copyIn(from: address, count: count)
    }

    /// Copies application memory into `buffer`.
    public func copyIn(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(SyscallError) {
        try memory().copyIn(from: address, into: buffer)
    }

    /// Copies bytes into application memory (EFAULT unless writable).
    public func copyOut(_ bytes: some Collection<UInt8>, to address: UInt64) throws(SyscallError) {
        let mm = try memory()
        // The standard library's closures rethrow untyped errors; carry ours out by hand.
        var failure: SyscallError?
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            do throws(SyscallError) { try mm.copyOut(UnsafeRawBufferPointer(buffer), to: address) } catch { failure = error }
        }
        if done == nil {
            Array(bytes).withUnsafeBytes { buffer in
                do throws(SyscallError) { try mm.copyOut(buffer, to: address) } catch { failure = error }
            }
        }
        if let failure { throw failure }
    }

    /// Copies raw bytes into application memory.
    public func copyOut(_ buffer: UnsafeRawBufferPointer, to address: UInt64) throws(SyscallError) {
        try memory().copyOut(buffer, to: address)
    }

    /// Reads a fixed-size C struct or integer from application memory.
    public func copyIn<T: BitwiseCopyable>(_ type: T.Type, from address: UInt64) throws(SyscallError) -> T {
        let mm = try memory()
        return try withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { storage throws(SyscallError) -> T in
            let raw = UnsafeMutableRawBufferPointer(storage)
            try mm.copyIn(from: address, into: raw)
            return raw.loadUnaligned(as: T.self)
        }
    }

    /// Writes a fixed-size C struct or integer into application memory.
    public func copyOut<T: BitwiseCopyable>(value: T, to address: UInt64) throws(SyscallError) {
        let mm = try memory()
        var copy = value
        try withUnsafeBytes(of: &copy) { raw throws(SyscallError) in
            try mm.copyOut(raw, to: address)
        }
    }

    /// Reads a NUL-terminated string: ENAMETOOLONG if longer than `maxLength`
    /// bytes (PATH_MAX by default), EFAULT if it runs into unmapped memory.
    public func copyInString(from address: UInt64, maxLength: Int = Task.maxPathLength) throws(SyscallError) -> String {
        try memory().copyInString(from: address, maxLength: maxLength)
    }

    /// Reads a NULL-terminated array of string pointers (argv, envp).
    public func copyInStringArray(from address: UInt64, maxCount: Int = 0x7fff_ffff,
                                  maxLength: Int = 32 * 4096) throws(SyscallError) -> [String] {
        var strings: [String] = []
        var cursor = address
        while true {
            let pointer = try copyIn(UInt64.self, from: cursor)
            if pointer == 0 { return strings }
            guard strings.count < maxCount else { throw .e2big }
            strings.append(try copyInString(from: pointer, maxLength: maxLength))
            cursor += 8
        }
    }

    /// Reads `count` iovecs as readv/writev do: EINVAL for more than UIO_MAXIOV
    /// or a negative total; lengths are then clamped so that the total is at
    /// most MAX_RW_COUNT, as Linux's rw_copy_check_uvector does.
    public func copyInIOVecs(from address: UInt64, count: Int) throws(SyscallError) -> [IOVec] {
        guard count >= 0, count <= Task.maxIOVecs else { throw .einval }
        guard count > 0 else { return [] }
        let raw = try copyIn(from: address, count: count * 16)
        var vectors: [IOVec] = []
        vectors.reserveCapacity(count)
        var total: UInt64 = 0
        for index in 0..<count {
            let base = raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * 16, as: UInt64.self) }
            var length = raw.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * 16 + 8, as: UInt64.self) }
            guard Int64(bitPattern: length) >= 0 else { throw .einval }
            length = min(length, Task.maxReadWriteCount - total)
            total += length
            vectors.append(IOVec(base: base, length: length))
        }
        return vectors
    }

    /// Gives `body` the Sentry's view of `address..<address+count` piece by
    /// piece (no copy): for reading a host file straight into application
    /// memory (`access: .write`) or writing from it (`access: .read`).
    /// EFAULT before `body` runs if any part is inaccessible. `body` runs
    /// without the MM's lock, so it may block.
    public func withApplicationMemory(at address: UInt64, count: Int, access: Protection,
                                      _ body: (UnsafeMutableRawBufferPointer) throws(SyscallError) -> Void) throws(SyscallError) {
        try memory().withMemory(at: address, count: count, access: access, body)
    }
}

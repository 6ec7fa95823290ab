import Logging
import Synchronization

/// The six argument registers of a syscall (rdi, rsi, rdx, r10, r8, r9), with
/// the conversions handlers need; reading an argument never traps.
public struct SyscallArguments: Sendable {
    public var raw: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    public init(_ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0,
                _ a3: UInt64 = 0, _ a4: UInt64 = 0, _ a5: UInt64 = 0) {
        raw = (a0, a1, a2, a3, a4, a5)
    }

    /// Argument `index` (0...5) as the raw 64-bit register.
    public subscript(index: Int) -> UInt64 {
        switch index {
        case 0: raw.0
        case 1: raw.1
        case 2: raw.2
        case 3: raw.3
        case 4: raw.4
        case 5: raw.5
        default: 0
        }
    }

    /// An address argument.
    public func pointer(_ index: Int) -> UInt64 { self[index] }
    /// A C `int` argument: the low 32 bits, sign-extended, as Linux reads it.
    public func int(_ index: Int) -> Int32 { Int32(truncatingIfNeeded: self[index]) }
    /// A C `unsigned int` argument: the low 32 bits.
    public func uint(_ index: Int) -> UInt32 { UInt32(truncatingIfNeeded: self[index]) }
    /// A C `long` / `ssize_t` / `off_t` argument.
    public func int64(_ index: Int) -> Int64 { Int64(bitPattern: self[index]) }
    /// A `size_t` argument.
    public func uint64(_ index: Int) -> UInt64 { self[index] }
}

/// What a syscall handler is: it reads its arguments, acts on the task, and
/// returns the value for rax or throws the errno (or a restart code).
public typealias SyscallHandler = @Sendable (Task, SyscallArguments) throws(SyscallError) -> Int64

/// One row of the table.
public struct SyscallEntry: Sendable {
    public let number: Int
    public let name: String
    public let handler: SyscallHandler
}

/// The x86_64 syscall table: handlers by number, and names for every number
/// (implemented or not) so that ENOSYS is logged once by name and `--debug`
/// can print counts per syscall.
///
/// Each family registers itself from its own file (`Syscalls+Memory.swift`
/// has `registerMemory`); `standard` lists the families, one line each.
public struct SyscallTable: Sendable {
    /// Entries indexed by number: the per-syscall lookup is an array load.
    private var byNumber: [SyscallEntry?] = []

    public init() {}

    /// The table the kernel runs with.
    public static let standard: SyscallTable = {
        var table = SyscallTable()
        table.registerMemory()
        table.registerProcess()
        table.registerCredentials()
        table.registerShm()
        table.registerSemaphores()
        table.registerMessageQueues()
        table.registerScheduling()
        table.registerProcessGroup()
        table.registerExec()
        table.registerClone()
        table.registerWait()
        table.registerPidFD()
        table.registerTime()
        table.registerTimers()
        table.registerRandom()
        table.registerSignal()
        table.registerFutex()
        table.registerCapability()
        table.registerSeccomp()
        table.registerFiles()
        table.registerSocket()
        return table
    }()

    /// Registers `handler` for syscall `number`; the name comes from the kernel headers.
    public mutating func register(_ number: Int, _ handler: @escaping SyscallHandler) {
        let entry = SyscallEntry(number: number, name: SyscallTable.name(of: number), handler: handler)
        guard number >= 0 else { return }
        if number >= byNumber.count { byNumber += [SyscallEntry?](repeating: nil, count: number + 1 - byNumber.count) }
        byNumber[number] = entry
    }

    /// Registers a syscall that returns a fixed errno (e.g. `rseq` → ENOSYS) without logging.
    public mutating func register(_ number: Int, failingWith error: SyscallError) {
        register(number) { _, _ throws(SyscallError) in throw error }
    }

    public static func name(of number: Int) -> String {
        SyscallNames.byNumber[number] ?? "syscall_\(number)"
    }

    /// The x86_64 number of syscall `name`; nil for a name this architecture lacks.
    public static func number(of name: String) -> Int? {
        SyscallNames.byName[name]
    }

    public func entry(_ number: Int) -> SyscallEntry? {
        number >= 0 && number < byNumber.count ? byNumber[number] : nil
    }
}

/// Per-kernel syscall statistics: counts for `--debug`, and the set of
/// unimplemented syscalls already logged. Host-only bookkeeping, not saved.
public final class SyscallStatistics: @unchecked Sendable {
    // Guarded by `lock`, a leaf (see VFSLock).
    private let lock = Mutex<Void>(())
    private var counts: [Int: UInt64] = [:]
    private var reportedUnimplemented: Set<Int> = []
    public let countingEnabled: Bool

    public init(countingEnabled: Bool) {
        self.countingEnabled = countingEnabled
    }

    func count(_ number: Int) {
        guard countingEnabled else { return }
        lock.withLock { _ in counts[number, default: 0] += 1 }
    }

    /// Whether this is the first time `number` was found unimplemented.
    func firstUnimplemented(_ number: Int) -> Bool {
        lock.withLock { _ in reportedUnimplemented.insert(number).inserted }
    }

    /// Counts by syscall name, most frequent first.
    public func summary() -> [(name: String, count: UInt64)] {
        let snapshot = lock.withLock { _ in counts }
        return snapshot.map { (SyscallTable.name(of: $0.key), $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.name < $1.name }
    }
}

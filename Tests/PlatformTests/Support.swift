import CShim
import Glibc
import Platform
import Synchronization

/// Hand-assembled x86_64 instructions for test programs.
enum X86 {
    enum Register: UInt8 { case rax = 0, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15 }

    static let syscall: [UInt8] = [0x0f, 0x05]
    /// `jmp $`: loops forever.
    static let spin: [UInt8] = [0xeb, 0xfe]
    /// `mov rax, [0]`: a null dereference.
    static let loadFromNull: [UInt8] = [0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0]
    /// `mov rdi, rax`
    static let movRDIFromRAX: [UInt8] = [0x48, 0x89, 0xc7]
    /// `mov [rax], rbx`
    static let storeRBXAtRAX: [UInt8] = [0x48, 0x89, 0x18]
    /// `movq rdi, xmm0`
    static let movRDIFromXMM0: [UInt8] = [0x66, 0x48, 0x0f, 0x7e, 0xc7]
    /// `movq xmm1, rax`
    static let movXMM1FromRAX: [UInt8] = [0x66, 0x48, 0x0f, 0x6e, 0xc8]
    /// `mov rdi, fs:[0]`
    static let loadRDIFromFS: [UInt8] = [0x64, 0x48, 0x8b, 0x3c, 0x25, 0, 0, 0, 0]

    /// `mov eax, imm32`
    static func movEAX(_ value: UInt32) -> [UInt8] { [0xb8] + le(value) }

    /// `mov reg, imm32` (sign-extended to 64 bits).
    static func mov(_ register: Register, _ value: Int32) -> [UInt8] {
        let r = register.rawValue
        return [r >= 8 ? 0x49 : 0x48, 0xc7, 0xc0 | (r & 7)] + le(UInt32(bitPattern: value))
    }

    /// `movabs rax, imm64`
    static func movabsRAX(_ value: UInt64) -> [UInt8] {
        [0x48, 0xb8] + (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// A complete syscall: `mov eax, number; syscall`.
    static func call(_ number: Int32) -> [UInt8] { movEAX(UInt32(number)) + syscall }

    private static func le(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs `body` on a dedicated pthread (ptrace wants one tracer thread) and
/// returns what it returned.
func onTracerThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let outcome = Mutex<Result<T, any Error>?>(nil)
    let thread = try DedicatedThread(name: "platform-test") {
        let result = Result { try body() }
        outcome.withLock { $0 = result }
    }
    thread.join()
    guard let result = outcome.withLock({ $0 }) else { throw TestFailure(description: "thread produced nothing") }
    return try result.get()
}

/// A MemoryFile stand-in, a stub, and a Context, with a code page mapped
/// executable at `codeAddress` and a data page mapped read-write at
/// `dataAddress`. Create and use it on one tracer thread.
final class StubFixture {
    static let codeAddress: UInt64 = 0x10000
    static let dataAddress: UInt64 = 0x20000
    static let codeOffset: UInt64 = 0
    static let dataOffset: UInt64 = 0x1000

    let memfd: Int32
    let addressSpace: AddressSpace
    let context: Context

    init(code: [UInt8]) throws {
        memfd = cshim_memfd_create("platform-test", CSHIM_MFD_CLOEXEC)
        guard memfd >= 0 else { throw TestFailure(description: "memfd_create: errno \(-memfd)") }
        guard ftruncate(memfd, 0x4000) == 0 else { throw TestFailure(description: "ftruncate: errno \(errno)") }
        addressSpace = try AddressSpace(memoryFile: memfd)
        context = try Context(addressSpace: addressSpace)
        try write(code, at: Self.codeOffset)
        try addressSpace.map(address: Self.codeAddress, length: 0x1000, fileOffset: Self.codeOffset,
                             protection: [.read, .execute])
        try addressSpace.map(address: Self.dataAddress, length: 0x1000, fileOffset: Self.dataOffset,
                             protection: [.read, .write])
    }

    deinit {
        addressSpace.release()
        AddressSpace.memoryFileClosing(memfd)
        close(memfd)
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws {
        let written = bytes.withUnsafeBytes { pwrite(memfd, $0.baseAddress, $0.count, off_t(offset)) }
        guard written == bytes.count else { throw TestFailure(description: "pwrite: errno \(errno)") }
    }

    func read(_ count: Int, at offset: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        _ = bytes.withUnsafeMutableBytes { pread(memfd, $0.baseAddress, count, off_t(offset)) }
        return bytes
    }

    /// Registers for a thread starting at byte `offset` of the code page.
    func start(at offset: Int = 0) -> Registers {
        Registers(rip: Self.codeAddress + UInt64(offset), rsp: 0)
    }
}

/// The whole text of a /proc file (they report size 0, so read to EOF).
func readProcFile(_ path: String) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        data += buffer[0..<n]
    }
    return String(decoding: data, as: UTF8.self)
}

/// Names in a directory, without "." and "..".
func directoryEntries(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

func readLink(_ path: String) -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buffer, buffer.count - 1)
    guard n >= 0 else { return "" }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

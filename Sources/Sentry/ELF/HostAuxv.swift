import Glibc

/// Values from the Sentry's own auxiliary vector that describe the CPU
/// (AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ): the application runs on the same
/// CPU, and Swift cannot call getauxval.
enum HostAuxv {
    static let values: [UInt64: UInt64] = {
        var values: [UInt64: UInt64] = [:]
        let fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return values }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return values }
        for index in stride(from: 0, to: count - 15, by: 16) {
            let key = buffer.load(UInt64.self, at: index)
            if key == 0 { break }
            values[key] = buffer.load(UInt64.self, at: index + 8)
        }
        return values
    }()

    static func value(_ type: UInt64) -> UInt64 { values[type] ?? 0 }
}

#if canImport(Glibc)
import Glibc
#endif
import CShim
import State

extension BenchSection {
    /// The page path of a checkpoint: a buffer shaped like a MemoryFile (40 %
    /// zero pages, 30 % text-like, 30 % random) through `PagesFile` with each
    /// codec, on one thread and on all CPUs, beside memcpy of the same buffer.
    static let stateCodecs = BenchSection(
        name: "state-codecs",
        summary: "MB/s of memcpy, zero-page scan and each codec on a page buffer",
        options: ["--mib N       buffer size in MiB (default 1024)",
                  "--repeats N   timed runs per row, best kept (default 3)",
                  "--threads N   the 'all cores' thread count (default: CPUs available)",
                  "--level N     zstd level (default 1)"],
        run: runStateCodecs)
}

private func runStateCodecs(_ options: BenchOptions) throws {
    let pageSize = 4096
    let mib = max(options.int("mib", default: 1024), 1)
    let repeats = options.int("repeats", default: 3)
    let cores = max(options.int("threads", default: availableProcessors()), 1)
    let level = options.int("level", default: 1)
    let size = mib << 20
    let pages = size / pageSize
    let megabytes = Double(size) / 1e6

    let source = try PageBuffer(size: size)
    let counts = source.fillLikeMemory(seed: 0x5EED)
    let target = try PageBuffer(size: size)
    print("state-codecs: \(mib) MiB, \(counts.zero * 100 / pages)% zero / \(counts.text * 100 / pages)% text / "
          + "\(counts.random * 100 / pages)% random pages, \(cores) thread(s) for 'all', zstd level \(level), "
          + "best of \(repeats)")

    var table = Table(columns: ["operation", "threads", "MB/s", "x memcpy", "MB/s per CPU", "output MiB", "ratio"])
    let memcpyTime = bestTiming(repeats) { memcpy(target.base, source.base, size) }
    let memcpyRate = megabytes / memcpyTime.wall
    func row(_ name: String, threads: Int, seconds: Timing, output: UInt64? = nil) {
        let rate = megabytes / seconds.wall
        table.add([name, String(threads), format(rate), format(rate / memcpyRate, decimals: 2),
                   format(megabytes / seconds.cpu),
                   output.map { format(Double($0) / 1048576, decimals: 1) } ?? "",
                   output.map { format(Double(size) / Double(max($0, 1)), decimals: 2) } ?? ""])
    }
    row("memcpy", threads: 1, seconds: memcpyTime)

    for threads in Set([1, cores]).sorted() {
        var found = 0
        let seconds = bestTiming(repeats) { found = countZeroPages(source, pages: pages, pageSize: pageSize, threads: threads) }
        precondition(found == counts.zero, "zero-page scan found \(found) zero pages, expected \(counts.zero)")
        row("zero-page scan", threads: threads, seconds: seconds)
    }

    for threads in Set([1, cores]).sorted() {
        let seconds = bestTiming(repeats) { checksumInParallel(source, threads: threads) }
        row("checksum (h64)", threads: threads, seconds: seconds)
    }

    let all = [0..<UInt64(size)]
    let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
    defer { close(devNull) }
    let encodedPath = "/dev/shm/runsc-bench-pages-\(getpid())"
    defer { unlink(encodedPath) }
    for codec in Compression.allCases {
        var encodedSize: UInt64 = 0
        for threads in Set([1, cores]).sorted() {
            let workers = threads == 1 ? 0 : threads
            let frameOptions = FrameOptions(compression: codec, level: level, workers: workers)
            let seconds = try bestTiming(repeats) {
                lseek(devNull, 0, SEEK_SET)
                encodedSize = try PagesFile.write(fd: devNull, path: "/dev/null", memory: source.bytes, ranges: all,
                                                  pageSize: pageSize, options: frameOptions).size
            }
            row("\(codec.rawValue) compress", threads: threads, seconds: seconds, output: encodedSize)
        }
        let fd = open(encodedPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BenchError("cannot create \(encodedPath): errno \(errno)") }
        defer { close(fd) }
        _ = try PagesFile.write(fd: fd, path: encodedPath, memory: source.bytes, ranges: all, pageSize: pageSize,
                                options: FrameOptions(compression: codec, level: level, workers: cores))
        memset(target.base, 0, size)
        for threads in Set([1, cores]).sorted() {
            let workers = threads == 1 ? 0 : threads
            let seconds = try bestTiming(repeats) {
                _ = try PagesFile.read(fd: fd, path: encodedPath, into: target.mutableBytes, pageSize: pageSize,
                                       workers: workers)
            }
            guard memcmp(target.base, source.base, size) == 0 else {
                throw BenchError("\(codec.rawValue) decompression did not restore the buffer")
            }
            row("\(codec.rawValue) decompress", threads: threads, seconds: seconds, output: encodedSize)
        }
    }
    print(table.render())
    print("MB/s counts the whole buffer (zero pages included) per wall-clock second; 'MB/s per CPU' per second "
          + "of CPU time of all threads (what one unshared CPU would do). Compression writes to /dev/null, "
          + "decompression reads a file in /dev/shm into a pre-faulted buffer.")
}

/// A benchmark that could not run, with what went wrong.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// An anonymous, page-aligned, pre-faulted mapping.
final class PageBuffer {
    let base: UnsafeMutableRawPointer
    let size: Int

    init(size: Int) throws {
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            throw BenchError("cannot map \(size) bytes")
        }
        base = mapped
        self.size = size
        memset(base, 0, size)
    }

    deinit { munmap(base, size) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
    var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: size) }

    /// Fills pages at random: 40 % stay zero, 30 % get text-like bytes
    /// (compressible about 3x), 30 % get random bytes (incompressible).
    func fillLikeMemory(seed: UInt64) -> (zero: Int, text: Int, random: Int) {
        let pageSize = 4096
        var state = seed
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        let words: [[UInt8]] = ["the ", "kernel ", "task ", "signal ", "pipe ", "of ", "memory ", "futex ", "and ",
                                "runsc ", "sandbox ", "checkpoint ", "restore ", "file ", "thread ", "\n", "0x7f3a ",
                                "error ", "return ", "int "].map { Array($0.utf8) }
        var counts = (zero: 0, text: 0, random: 0)
        for page in 0..<(size / pageSize) {
            let start = base + page * pageSize
            let kind = next() % 10
            if kind < 4 {
                counts.zero += 1
            } else if kind < 7 {
                counts.text += 1
                var offset = 0
                while offset < pageSize {
                    let word = words[Int(next() % UInt64(words.count))]
                    let take = min(word.count, pageSize - offset)
                    word.withUnsafeBytes { (start + offset).copyMemory(from: $0.baseAddress!, byteCount: take) }
                    offset += take
                }
            } else {
                counts.random += 1
                let words64 = start.bindMemory(to: UInt64.self, capacity: pageSize / 8)
                for index in 0..<(pageSize / 8) { words64[index] = next() }
            }
        }
        return counts
    }
}

/// Counts all-zero pages with `threads` threads (each a contiguous share).
private func countZeroPages(_ buffer: PageBuffer, pages: Int, pageSize: Int, threads: Int) -> Int {
    if threads == 1 {
        return countZero(buffer.base, pages: pages, pageSize: pageSize)
    }
    let results = UnsafeMutablePointer<Int>.allocate(capacity: threads)
    defer { results.deallocate() }
    let share = (pages + threads - 1) / threads
    let base = buffer.base
    let resultsAddress = Int(bitPattern: results)
    let baseAddress = Int(bitPattern: base)
    onThreads(threads) { index in
        let first = min(index * share, pages)
        let count = min(share, pages - first)
        let start = UnsafeRawPointer(bitPattern: baseAddress)! + first * pageSize
        UnsafeMutablePointer<Int>(bitPattern: resultsAddress)![index] = countZero(start, pages: count, pageSize: pageSize)
    }
    return (0..<threads).reduce(0) { $0 + results[$1] }
}

/// Checksums `threads` contiguous shares of the buffer, one per thread.
private func checksumInParallel(_ buffer: PageBuffer, threads: Int) {
    let share = buffer.size / threads
    let baseAddress = Int(bitPattern: buffer.base)
    onThreads(threads) { index in
        let start = UnsafeRawPointer(bitPattern: baseAddress)! + index * share
        _ = Checksum.of(UnsafeRawBufferPointer(start: start, count: share))
    }
}

private func countZero(_ start: UnsafeRawPointer, pages: Int, pageSize: Int) -> Int {
    var zero = 0
    for page in 0..<pages where cshim_is_zero(start + page * pageSize, pageSize) {
        zero += 1
    }
    return zero
}

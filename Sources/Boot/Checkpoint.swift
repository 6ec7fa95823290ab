import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging
import OCI
import Platform
import Sentry
import State

/// `runsc checkpoint` inside the sandbox: pause the kernel (every task at
/// rest with its registers in the Task), save the object graph to
/// `state.img` and the MemoryFile's used ranges to `pages.img`, publish the
/// image atomically, then stop the container or let it run on. Any failure
/// resumes the container and leaves no image that looks complete.
extension Loader {
    /// The runtime version written into images (and printed by `runsc --version`).
    public static let runtimeVersion = "0.1.0-dev"

    /// Manifest metadata keys.
    static let specDigestKey = "specDigest"
    static let rootfsKey = "rootfs"

    /// `parentDirectory` is a descriptor of `imagePath`'s parent directory: the
    /// image is written by its last name there (the working directory moves
    /// to it meanwhile; nothing else of the Sentry uses relative host paths).
    public func checkpoint(to imagePath: String, in parentDirectory: Int32, compression: Compression,
                           leaveRunning: Bool) throws(CheckpointError) -> CheckpointSummary {
        try checkpointLock.withLock { paused throws(CheckpointError) -> CheckpointSummary in
            let started = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            var timer = PhaseTimer()
            // A container `runsc pause` paused is already at rest, and stays paused if left running.
            if !paused {
                do {
                    try kernel.pause()
                } catch {
                    throw CheckpointError("\(error)")
                }
            }
            let summary: CheckpointSummary
            do throws(CheckpointError) {
                timer.mark("pause")
                kernel.writeBackSharedMappings()
                HostFile.beginCheckpoint()
                let name: String
                do {
                    name = try ImageDirectory.split(imagePath).name
                } catch {
                    throw CheckpointError("\(error)")
                }
                summary = try workingDirectoryLock.withLock { _ throws(CheckpointError) in
                    guard fchdir(parentDirectory) == 0 else {
                        throw CheckpointError("cannot enter the directory of \(imagePath): \(String(cString: strerror(errno)))")
                    }
                    defer { _ = chdir("/") }
                    return try save(to: name, reportedAs: imagePath, compression: compression, started: started,
                                    timer: &timer)
                }
            } catch {
                if !paused { kernel.resume() }
                throw error
            }
            if !leaveRunning {
                // The processes runsc exec waits for end with the container: their callers learn why.
                execProcesses.checkpointing(into: imagePath)
                // Killed while parked: each task leaves at its next stop,
                // before it runs another application instruction.
                for group in kernel.pidNamespace.allThreadGroups {
                    group.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
                }
                paused = false
                kernel.resume()
            } else if !paused {
                kernel.resume()
            }
            timer.mark("resume")
            logger.info("checkpoint \(imagePath): \(summary)")
            logger.debug("checkpoint phases: \(timer.description)")
            return summary
        }
    }

    /// Writes the paused kernel's image; `durable: false` skips the syncs
    /// (the save/restore test mode's images never outlive the sandbox);
    /// an error names the image `reportedAs` (its absolute path), when given.
    func save(to imagePath: String, reportedAs shownPath: String? = nil, compression: Compression, durable: Bool = true,
              started: Int64, timer: inout PhaseTimer) throws(CheckpointError) -> CheckpointSummary {
        let memoryFile = kernel.memoryFile
        guard let base = memoryFile.base else { throw CheckpointError("the memory file is not mapped") }
        let info = ImageInfo(runtimeVersion: Loader.runtimeVersion, containerIDs: [containerID],
                             cpuFeatures: CPUFeatures.current.manifestEntries,
                             metadata: [Loader.specDigestKey: specDigest, Loader.rootfsKey: rootfs]
                                 .merging(processMetadata.map { [Loader.processKey: $0] } ?? [:]) { first, _ in first })
        do {
            kernel.releaseFileCache()
            // A restored container's memory may still be loading.
            try memoryFile.finishLoading()
            timer.mark("memory load")
            let state = try StateEncoder.encode(root: kernel, registry: SentryStateTypes.registry)
            timer.mark("encode")
            let writer = try ImageWriter(directory: imagePath, compression: compression, info: info, overwrite: true,
                                         durable: durable)
            let stateSummary = try writer.writeState(state)
            timer.mark("state.img")
            let ranges = memoryFile.usedRanges
            let memory = UnsafeRawBufferPointer(start: base, count: Int(memoryFile.capacity))
            let pagesSummary = try writer.writePages(memory: memory, ranges: ranges, file: memoryFile.fd)
            timer.mark("pages.img")
            let manifest = try writer.commit()
            timer.mark("commit")
            let size = manifest.files.values.reduce(0) { $0 + $1.size }
            return CheckpointSummary(
                memoryBytes: ranges.reduce(0) { $0 + ($1.upperBound - $1.lowerBound) },
                stateBytes: stateSummary.uncompressedBytes, pagesBytes: pagesSummary.uncompressedBytes,
                imageBytes: size,
                nanoseconds: UInt64(max(0, Clocks.hostNanoseconds(CLOCK_MONOTONIC) - started)))
        } catch {
            throw CheckpointError("cannot write the image to \(shownPath ?? imagePath): \(error)")
        }
    }

    /// A stable digest of the spec (FNV-1a over its canonical JSON), so an
    /// image says which configuration it was taken under.
    static func digest(of spec: Spec) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = (try? encoder.encode(spec)).map { [UInt8]($0) } ?? []
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return "fnv1a64:" + String(hash, radix: 16)
    }
}

/// What a checkpoint wrote, for the command line's report.
public struct CheckpointSummary: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Application memory in use (the MemoryFile's used ranges).
    public var memoryBytes: UInt64
    public var stateBytes: UInt64
    /// Page bytes stored after zero-page elision, before compression.
    public var pagesBytes: UInt64
    /// The image's size on disk.
    public var imageBytes: UInt64
    /// From the pause to the published image.
    public var nanoseconds: UInt64

    public init(memoryBytes: UInt64, stateBytes: UInt64, pagesBytes: UInt64, imageBytes: UInt64, nanoseconds: UInt64) {
        self.memoryBytes = memoryBytes
        self.stateBytes = stateBytes
        self.pagesBytes = pagesBytes
        self.imageBytes = imageBytes
        self.nanoseconds = nanoseconds
    }

    public var description: String {
        "\(Self.decimal(memoryBytes, unit: 1 << 20, places: 1)) MiB of memory saved as a "
            + "\(Self.decimal(imageBytes, unit: 1 << 20, places: 1)) MiB image in "
            + "\(Self.decimal(nanoseconds, unit: 1_000_000_000, places: 3)) s"
    }

    /// `value / unit` rounded to `places` decimals, in integer arithmetic (no
    /// Foundation formatting, whose ICU data costs every runsc start).
    static func decimal(_ value: UInt64, unit: UInt64, places: Int) -> String {
        var scale: UInt64 = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = (value.multipliedReportingOverflow(by: scale).partialValue + unit / 2) / unit
        let fraction = String(scaled % scale)
        let padding = String(repeating: "0", count: max(0, places - fraction.count))
        return places == 0 ? String(scaled) : "\(scaled / scale).\(padding)\(fraction)"
    }
}

/// Why a checkpoint failed; the container is still running.
public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

import Foundation
import State

/// What anyone can do to an unkeyed image: change its object graph and seal
/// it again, every frame checksum and file digest recomputed as the format
/// requires, so only the restore's own checks stand in the way.
enum ImageSealing {
    /// Writes `image` again at `copy`, with the same manifest facts and
    /// memory, its state replaced by `transform(state)`.
    static func reseal(_ image: String, to copy: String, _ transform: ([UInt8]) throws -> [UInt8]) throws {
        let reader = try ImageReader(directory: image)
        let state = try transform(try reader.readState())
        let size = Int(reader.requiredMemorySize)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 4096)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        let pages = UnsafeMutableRawBufferPointer(rebasing: memory[0..<size])
        if size > 0 { try reader.readPages(into: pages) }
        let manifest = reader.manifest
        let info = ImageInfo(runtimeVersion: manifest.runtimeVersion, containerIDs: manifest.containerIDs,
                             cpuFeatures: manifest.cpuFeatures, architecture: manifest.architecture,
                             pageSize: manifest.pageSize, created: manifest.created, metadata: manifest.metadata)
        let writer = try ImageWriter(directory: copy, compression: manifest.compression,
                                     level: manifest.compressionLevel ?? 1, info: info)
        try writer.writeState(state)
        try writer.writePages(memory: UnsafeRawBufferPointer(pages), ranges: size > 0 ? [0..<UInt64(size)] : [])
        try writer.commit()
    }

    /// `bytes` with every occurrence of `text` replaced by `replacement` (same length), and how many there were.
    static func replacing(_ text: String, with replacement: String, in bytes: [UInt8]) -> ([UInt8], Int) {
        let needle = Array(text.utf8), substitute = Array(replacement.utf8)
        precondition(needle.count == substitute.count && !needle.isEmpty)
        var result = bytes
        var count = 0
        var index = 0
        while index + needle.count <= result.count {
            if Array(result[index..<index + needle.count]) == needle {
                result.replaceSubrange(index..<index + needle.count, with: substitute)
                count += 1
                index += needle.count
            } else {
                index += 1
            }
        }
        return (result, count)
    }
}

import State

/// What the MM needs from a file to map it: the VFS's file objects adopt this.
///
/// Private mappings copy the file's bytes into MemoryFile pages when first
/// touched (so the stub never sees a host file), or, without write, share
/// the pages the memory file's FileCache keeps of a host file; shared
/// mappings go through the file's `sharedPages`, one per file, so two
/// mappings of one file see the same bytes, and write back on msync, munmap
/// and exit.
public protocol MappableFile: Savable {
    /// Reads up to `buffer.count` bytes at `offset`; returns how many were read
    /// (fewer at end of file; the MM zero-fills the rest).
    func readForMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError) -> Int
    /// Like `readForMapping`, for a private mapping's copy: where the file
    /// keeps pages besides the host file's (a shared mapping's page cache),
    /// their bytes, as read shows them. The shared pages themselves are
    /// filled by `readForMapping`.
    func readForPrivateMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError) -> Int
    /// Writes back bytes of a shared mapping at `offset`; never extends the file.
    func writeFromMapping(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(SyscallError)
    /// The file's current size, to bound write-back.
    func sizeForMapping() throws(SyscallError) -> UInt64
    /// The pages every MAP_SHARED mapping of this file shares. The file keeps
    /// one for its lifetime (create it lazily with `SharedMemory(memoryFile:)`).
    func sharedPages(memoryFile: MemoryFile) -> SharedMemory
    /// The name /proc/self/maps shows.
    var mappingName: String { get }
    /// The host file's identity and version, for the file cache; nil for a
    /// file that is not a host file (nothing to cache it by).
    func cacheVersion() throws(SyscallError) -> (FileCache.Identity, FileCache.Version)?
    /// Whether the file's bytes are in pages of its own besides the host
    /// file (a MAP_SHARED page cache with stores not written back): the
    /// file cache, which holds the host file's bytes, cannot stand for it then.
    var hasSharedPageCache: Bool { get }
    /// Copies the file's first `count` bytes into `memoryFile` at
    /// `memoryOffset` inside the host, without reading them into the Sentry
    /// (the file cache's fill); false when the file cannot (one with a
    /// shared page cache: the host file's bytes are not all of it), or could
    /// not copy them all: the caller reads them instead.
    func copyForMapping(into memoryFile: MemoryFile, at memoryOffset: UInt64, count: Int) -> Bool
}

extension MappableFile {
    public func cacheVersion() throws(SyscallError) -> (FileCache.Identity, FileCache.Version)? { nil }
    public var hasSharedPageCache: Bool { false }
    public func copyForMapping(into memoryFile: MemoryFile, at memoryOffset: UInt64, count: Int) -> Bool { false }
    public func readForPrivateMapping(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(SyscallError)
        -> Int {
        try readForMapping(into: buffer, at: offset)
    }
}

/// A saved reference to a file a VMA maps: the file is saved as the object it
/// is (its own type), referenced from the VMA.
struct MappedFileReference: SavableValue, @unchecked Sendable {
    let file: any MappableFile

    static var stateKind: StateKind { .object("sentry.MappableFile") }

    func saveState(to writer: inout StateWriter) throws {
        writer.writeObject(file)
    }

    static func decodeState(_ state: StateValue, context: LoadContext) throws -> MappedFileReference {
        guard case .object(let id) = state else {
            throw StateError.invalidValue("expected a reference to a mappable file, found \(state)")
        }
        guard let file = try context.object(id: id) as? any MappableFile else {
            throw StateError.invalidValue("object \(id) is not a mappable file")
        }
        return MappedFileReference(file: file)
    }
}

import State

/// An open directory of any filesystem: getdents64 walks "." and "..", then
/// the inode's entries. The offset counts entries returned so far (a cookie
/// Linux also lets a filesystem choose), so it survives a checkpoint as a number.
///
/// One pass over the directory (from offset 0 to the end) walks one listing,
/// taken at its first read: a program that removes what it has read (`rm -r`)
/// would otherwise see the entries after them shift under its offset and
/// skip them. Entries added or removed during a pass may or may not show, as
/// POSIX allows for readdir. The listing is saved with the offset, so a
/// checkpoint in the middle of a pass does not shift it either.
public final class DirectoryFile: FileDescription, @unchecked Sendable { // guarded by FileDescription.lock
    override public class var savedTypeName: String { "vfs.DirectoryFile" }
    override public class var savedAs: [String: String] {
        super.savedAs.merging(["listing": "listingNames"]) { first, _ in first }
    }

    /// The current pass's listing (nil before the first read).
    private var listing: [DirectoryEntry]?

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("listingNames", listing?.map(\.name))
        try sink.save("listingInodes", listing?.map(\.inodeNumber))
        try sink.save("listingTypes", listing?.map(\.type))
    }

    /// Images from before the listing was saved have none: the next read lists again.
    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        let names: [String]? = try source.load("listingNames", default: nil)
        let inodes: [UInt64]? = try source.load("listingInodes", default: nil)
        let types: [FileType]? = try source.load("listingTypes", default: nil)
        guard let names else { return }
        guard let inodes, let types, inodes.count == names.count, types.count == names.count else {
            throw StateError.invalidValue("the listing's names, inodes and types differ in number", field: "listingInodes")
        }
        for name in names where name != "." && name != ".." {
            try ImageValidation.name(name, field: "listingNames")
        }
        listing = (0..<names.count).map { DirectoryEntry(name: names[$0], inodeNumber: inodes[$0], type: types[$0]) }
    }

    override public var isSeekable: Bool { true }

    override public func readData(count: Int, at position: Int64) throws(SyscallError) -> [UInt8] { throw .eisdir }

    override public func writeData(_ bytes: [UInt8], at position: Int64, append: Bool) throws(SyscallError)
        -> (written: Int, end: Int64) {
        throw .eisdir
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 {
        try lock.withLock { _ throws(SyscallError) -> Int64 in
            switch whence {
            case LinuxFile.seekSet:
                guard offset >= 0 else { throw .einval }
                self.offset = offset
            case LinuxFile.seekCurrent:
                // Past INT64_MAX Linux's sum wraps negative: EINVAL.
                let (sum, overflow) = self.offset.addingReportingOverflow(offset)
                guard !overflow, sum >= 0 else { throw .einval }
                self.offset = sum
            default: throw .einval
            }
            return self.offset
        }
    }

    /// EINVAL when not even the next entry fits in `capacity`, as getdents64.
    override public func readDirectory(capacity: Int) throws(SyscallError) -> [UInt8] {
        guard let location else { throw .enotdir }
        // A read from offset 0 (a new pass, or after rewinddir) lists afresh.
        let entries: [DirectoryEntry]
        if let current = lock.withLock({ _ in offset == 0 ? nil : listing }) {
            entries = current
        } else {
            entries = try Self.list(location)
        }
        let result = lock.withLock { _ -> [UInt8] in
            listing = entries
            var out: [UInt8] = []
            var index = Int(max(0, offset))
            while index < entries.count {
                let record = Self.encode(entries[index], nextOffset: Int64(index + 1))
                guard out.count + record.count <= capacity else { break }
                out += record
                index += 1
            }
            offset = Int64(index)
            return out
        }
        if result.isEmpty, Int(max(0, lock.withLock { _ in offset })) < entries.count { throw .einval }
        return result
    }

    /// ".", ".." and the inode's entries, as they are now.
    private static func list(_ location: VirtualPath) throws(SyscallError) -> [DirectoryEntry] {
        try VFSLock.shared.withLock { _ throws(SyscallError) -> [DirectoryEntry] in
            let dentry = location.dentry
            // A removed directory has no entries to list, not even "." (iterate_dir's IS_DEADDIR).
            guard !dentry.isDeleted else { throw .enoent }
            let selfNumber = try dentry.inode.attributes().inodeNumber
            let parent = VirtualFilesystem.parentForDotDot(of: location)
            let parentNumber = (try? parent.dentry.inode.attributes().inodeNumber) ?? selfNumber
            return [DirectoryEntry(name: ".", inodeNumber: selfNumber, type: .directory),
                    DirectoryEntry(name: "..", inodeNumber: parentNumber, type: .directory)]
                + (try dentry.inode.listEntries(in: dentry))
        }
    }

    /// One `linux_dirent64`: ino, off, reclen, type, NUL-terminated name, padded to 8.
    static func encode(_ entry: DirectoryEntry, nextOffset: Int64) -> [UInt8] {
        let name = Array(entry.name.utf8)
        let length = (19 + name.count + 1 + 7) & ~7
        var record = [UInt8](repeating: 0, count: length)
        record.put(entry.inodeNumber, at: 0)
        record.put(nextOffset, at: 8)
        record.put(UInt16(length), at: 16)
        record[18] = entry.type.directoryEntryType
        record.replaceSubrange(19..<(19 + name.count), with: name)
        return record
    }
}

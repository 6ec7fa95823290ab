import State

/// Page protections, as `mmap`'s PROT_* bits.
public struct Protection: OptionSet, Hashable, Sendable, SavableValue {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let read = Protection(rawValue: 1)
    public static let write = Protection(rawValue: 2)
    public static let execute = Protection(rawValue: 4)
    public static let none: Protection = []
    public static let all: Protection = [.read, .write, .execute]
}

/// One virtual memory area: a page-aligned range with one protection and one
/// backing, as a line of /proc/self/maps shows it.
public struct VMA: SavableStruct, Sendable {
    public static let savedTypeName = "sentry.VMA"
    public static let notSaved: Set<String> = [
        "fileNotCached", // a hint for faults, which a restore starts without
    ]

    public var start: UInt64
    public var end: UInt64
    public var protection: Protection
    /// What `mprotect` may add: a shared mapping of a read-only file may never become writable.
    public var maxProtection: Protection
    public var shared: Bool
    public var growsDown: Bool = false
    /// The file mapped, if any; `fileOffset` is the file offset at `start`.
    var file: MappedFileReference?
    public var fileOffset: UInt64 = 0
    /// For shared mappings: the pages all mappings share; `sharedOffset` is
    /// the byte offset within them at `start`.
    public var sharedMemory: SharedMemory?
    public var sharedOffset: UInt64 = 0
    /// "[heap]", "[stack]", or empty; file mappings show the file's name.
    public var name: String = ""
    /// The kernel's own pages (the vDSO), instead of memory or a file;
    /// `fileOffset` is then the offset within them, as Linux's vm_pgoff.
    public var special: SpecialMapping?
    /// The file cache does not keep this private mapping's file as it was at
    /// the first fault (no host file, too large, changed just now, larger
    /// than the cache): later faults read the file without asking the cache,
    /// or the host for the file's version, again. A later mapping asks anew.
    var fileNotCached = false

    public var range: Range<UInt64> { start..<end }
    public var length: UInt64 { end - start }
    public var mappedFile: (any MappableFile)? { file?.file }
    public var isAnonymous: Bool { file == nil }
    /// Backed by this MM's private pages (anonymous or a file's copy), not
    /// by pages shared with every mapping of an object or by the kernel's.
    var hasPrivatePages: Bool { sharedMemory == nil && special == nil }
    /// Copied whole at its first fault after a fork (`MemoryManager.smallPrivateCopy`).
    var isSmallWritablePrivate: Bool {
        hasPrivatePages && protection.contains(.write) && UInt64(range.count) <= MemoryManager.smallPrivateCopy
    }

    init(start: UInt64, end: UInt64, protection: Protection, maxProtection: Protection = .all,
         shared: Bool, file: (any MappableFile)? = nil, fileOffset: UInt64 = 0,
         sharedMemory: SharedMemory? = nil, sharedOffset: UInt64 = 0, name: String = "") {
        self.start = start
        self.end = end
        self.protection = protection
        self.maxProtection = maxProtection
        self.shared = shared
        self.file = file.map(MappedFileReference.init)
        self.fileOffset = fileOffset
        self.sharedMemory = sharedMemory
        self.sharedOffset = sharedOffset
        self.name = name
    }

    /// The part of this VMA within `range` (which must overlap it), with
    /// offsets adjusted.
    func clipped(to range: Range<UInt64>) -> VMA {
        var copy = self
        let newStart = max(start, range.lowerBound)
        copy.start = newStart
        copy.end = min(end, range.upperBound)
        if file != nil || special != nil { copy.fileOffset = fileOffset + (newStart - start) }
        if sharedMemory != nil { copy.sharedOffset = sharedOffset + (newStart - start) }
        return copy
    }

    /// Whether `next` continues this VMA exactly, so the two can merge.
    func canMerge(with next: VMA) -> Bool {
        end == next.start && protection == next.protection && maxProtection == next.maxProtection
            && shared == next.shared && growsDown == next.growsDown && name == next.name && special == next.special
            && file?.file === next.file?.file && fileNotCached == next.fileNotCached
            && (file == nil && special == nil || fileOffset + length == next.fileOffset)
            && sharedMemory === next.sharedMemory && (sharedMemory == nil || sharedOffset + length == next.sharedOffset)
    }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("start", start)
        try sink.save("end", end)
        try sink.save("protection", protection.rawValue)
        try sink.save("maxProtection", maxProtection.rawValue)
        try sink.save("shared", shared)
        try sink.save("growsDown", growsDown)
        try sink.save("file", file)
        try sink.save("fileOffset", fileOffset)
        try sink.save("sharedMemory", sharedMemory)
        try sink.save("sharedOffset", sharedOffset)
        try sink.save("name", name)
        try sink.save("special", special?.rawValue ?? "")
    }

    public init(from source: inout LoadSource) throws {
        start = try source.load("start")
        end = try source.load("end")
        guard start < end, Page.isAligned(start), Page.isAligned(end) else {
            throw StateError.invalidValue("VMA \(start)..<\(end) is not a page range")
        }
        protection = Protection(rawValue: try source.load("protection"))
        maxProtection = Protection(rawValue: try source.load("maxProtection"))
        shared = try source.load("shared")
        growsDown = try source.load("growsDown")
        file = try source.load("file")
        fileOffset = try source.load("fileOffset")
        sharedMemory = try source.load("sharedMemory")
        sharedOffset = try source.load("sharedOffset")
        name = try source.load("name")
        // Older images have no special mappings.
        let specialName: String = try source.load("special", default: "")
        if !specialName.isEmpty {
            guard let kind = SpecialMapping(rawValue: specialName) else {
                throw StateError.invalidValue("\(ImageValidation.describe(specialName)) is not a special mapping",
                                              field: "special")
            }
            special = kind
            try ImageValidation.require(file == nil && sharedMemory == nil && !shared && !growsDown
                                        && maxProtection.isSubset(of: kind.protection)
                                        && fileOffset <= UInt64(kind.pages.count)
                                        && end - start <= UInt64(kind.pages.count) - fileOffset,
                                        field: "special", "\(kind.name) mapped as no kernel maps it")
        }
        try ImageValidation.require(start >= MemoryManager.minAddress && end <= MemoryManager.maxAddress, field: "start",
                                    "VMA \(start)..<\(end) is outside the user address space")
        try ImageValidation.require(protection.isSubset(of: .all) && maxProtection.isSubset(of: .all)
                                    && protection.isSubset(of: maxProtection), field: "protection",
                                    "protection \(protection.rawValue) beyond what \(maxProtection.rawValue) allows")
        try ImageValidation.require(!fileOffset.addingReportingOverflow(end - start).overflow && Page.isAligned(fileOffset),
                                    field: "fileOffset", "file offset \(fileOffset) is unaligned or overflows")
        try ImageValidation.require(!sharedOffset.addingReportingOverflow(end - start).overflow
                                    && Page.isAligned(sharedOffset), field: "sharedOffset",
                                    "shared offset \(sharedOffset) is unaligned or overflows")
        try ImageValidation.require(name.utf8.count < LinuxFile.pathMax && !name.utf8.contains(0), field: "name",
                                    "\(ImageValidation.describe(name)) is not a mapping name")
    }
}

/// A run of private pages: application addresses `start..<end` are backed by
/// MemoryFile bytes from `offset`, held by the MM that holds this (and by
/// other MMs it shares them with copy-on-write after a fork).
public struct PrivatePages: SavableStruct, Sendable, Equatable {
    public static let savedTypeName = "sentry.PrivatePages"
    public var start: UInt64
    public var end: UInt64
    public var offset: UInt64

    init(start: UInt64, end: UInt64, offset: UInt64) {
        self.start = start
        self.end = end
        self.offset = offset
    }

    /// The MemoryFile bytes behind the run.
    var backing: Range<UInt64> { offset..<offset + (end - start) }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("start", start)
        try sink.save("end", end)
        try sink.save("offset", offset)
    }

    public init(from source: inout LoadSource) throws {
        start = try source.load("start")
        end = try source.load("end")
        offset = try source.load("offset")
        guard start < end, Page.isAligned(start), Page.isAligned(end), Page.isAligned(offset) else {
            throw StateError.invalidValue("private pages \(start)..<\(end) are not a page range")
        }
        try ImageValidation.require(start >= MemoryManager.minAddress && end <= MemoryManager.maxAddress, field: "start",
                                    "private pages \(start)..<\(end) are outside the user address space")
        try ImageValidation.require(!offset.addingReportingOverflow(end - start).overflow, field: "offset",
                                    "offset \(offset) overflows")
    }
}

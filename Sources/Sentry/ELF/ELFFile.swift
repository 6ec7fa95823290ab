/// A parsed x86_64 ELF executable: the header fields and program headers the
/// loader needs. Parsing checks everything the loader relies on, so a
/// malformed file is ENOEXEC here and never a trap later.
public struct ELFFile: Sendable {
    public enum FileType: UInt16, Sendable {
        case executable = 2   // ET_EXEC: loaded at its addresses
        case shared = 3       // ET_DYN: static-PIE, loaded at a bias
    }

    public struct ProgramHeader: Equatable, Sendable {
        public var type: UInt32
        public var flags: UInt32
        public var offset: UInt64
        public var virtualAddress: UInt64
        public var fileSize: UInt64
        public var memorySize: UInt64
        public var alignment: UInt64

        public static let load: UInt32 = 1
        public static let interpreter: UInt32 = 3
        public static let programHeaders: UInt32 = 6
        public static let gnuStack: UInt32 = 0x6474_e551

        /// PF_R/PF_W/PF_X as mmap protections.
        public var protection: Protection {
            var protection: Protection = []
            if flags & 4 != 0 { protection.insert(.read) }
            if flags & 2 != 0 { protection.insert(.write) }
            if flags & 1 != 0 { protection.insert(.execute) }
            return protection
        }
    }

    /// Why a file is not an executable we can run; all are ENOEXEC to the application.
    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        case tooShort
        case notELF
        case not64Bit
        case notLittleEndian
        case badVersion
        case notExecutable(type: UInt16)
        case wrongMachine(UInt16)
        case badProgramHeaders(String)
        case badSegment(index: Int, String)
        case noLoadableSegments
        case badInterpreter(String)

        public var description: String {
            switch self {
            case .tooShort: "file too short for an ELF header"
            case .notELF: "not an ELF file (bad magic)"
            case .not64Bit: "not a 64-bit ELF file"
            case .notLittleEndian: "not a little-endian ELF file"
            case .badVersion: "unknown ELF version"
            case .notExecutable(let type): "ELF type \(type) is neither ET_EXEC nor ET_DYN"
            case .wrongMachine(let machine): "ELF machine \(machine) is not x86_64"
            case .badProgramHeaders(let why): "bad program headers: \(why)"
            case .badSegment(let index, let why): "bad segment \(index): \(why)"
            case .noLoadableSegments: "no PT_LOAD segments"
            case .badInterpreter(let why): "bad PT_INTERP: \(why)"
            }
        }

        public var errno: SyscallError { .enoexec }
    }

    public static let machineX86_64: UInt16 = 62
    public static let headerSize = 64
    public static let programHeaderSize = 56
    /// Linux refuses program header tables larger than this (ELF_MIN_ALIGN * 16 = 64 KiB).
    static let maxProgramHeaderBytes = 65536

    public var type: FileType
    public var entry: UInt64
    public var programHeaderOffset: UInt64
    public var programHeaders: [ProgramHeader]
    /// Whether PT_GNU_STACK asks for an executable stack.
    public var executableStack: Bool
    /// PT_INTERP: the program interpreter (ld.so) a dynamically linked executable names.
    public var interpreter: String?

    public var loadSegments: [ProgramHeader] { programHeaders.filter { $0.type == ProgramHeader.load } }

    public init(bytes: [UInt8]) throws(ParseError) {
        let parsed = bytes.withUnsafeBytes { raw in Result { () throws(ParseError) -> ELFFile in try ELFFile(raw) } }
        self = try parsed.get()
    }

    /// Parses the whole file `bytes` (an exec's, in the memory file).
    public init(_ bytes: UnsafeRawBufferPointer) throws(ParseError) {
        guard bytes.count >= ELFFile.headerSize else { throw .tooShort }
        guard bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else { throw .notELF }
        guard bytes[4] == 2 else { throw .not64Bit }
        guard bytes[5] == 1 else { throw .notLittleEndian }
        guard bytes[6] == 1 else { throw .badVersion }
        let rawType = bytes.load(UInt16.self, at: 16)
        guard let type = FileType(rawValue: rawType) else { throw .notExecutable(type: rawType) }
        let machine = bytes.load(UInt16.self, at: 18)
        guard machine == ELFFile.machineX86_64 else { throw .wrongMachine(machine) }
        self.type = type
        entry = bytes.load(UInt64.self, at: 24)
        programHeaderOffset = bytes.load(UInt64.self, at: 32)
        let entrySize = Int(bytes.load(UInt16.self, at: 54))
        let count = Int(bytes.load(UInt16.self, at: 56))
        guard entrySize == ELFFile.programHeaderSize else {
            throw .badProgramHeaders("entry size \(entrySize), expected \(ELFFile.programHeaderSize)")
        }
        guard count > 0, count * entrySize <= ELFFile.maxProgramHeaderBytes else {
            throw .badProgramHeaders("\(count) entries")
        }
        let (tableEnd, overflow) = programHeaderOffset.addingReportingOverflow(UInt64(count * entrySize))
        guard !overflow, tableEnd <= UInt64(bytes.count) else {
            throw .badProgramHeaders("table at \(programHeaderOffset) runs past the end of the file")
        }
        var headers: [ProgramHeader] = []
        var executableStack = false
        var interpreter: String?
        for index in 0..<count {
            let base = Int(programHeaderOffset) + index * entrySize
            let header = ProgramHeader(
                type: bytes.load(UInt32.self, at: base),
                flags: bytes.load(UInt32.self, at: base + 4),
                offset: bytes.load(UInt64.self, at: base + 8),
                virtualAddress: bytes.load(UInt64.self, at: base + 16),
                fileSize: bytes.load(UInt64.self, at: base + 32),
                memorySize: bytes.load(UInt64.self, at: base + 40),
                alignment: bytes.load(UInt64.self, at: base + 48))
            if header.type == ProgramHeader.gnuStack { executableStack = header.flags & 1 != 0 }
            if header.type == ProgramHeader.interpreter, interpreter == nil {
                interpreter = try ELFFile.interpreterName(header, bytes: bytes)
            }
            if header.type == ProgramHeader.load { try ELFFile.check(header, index: index, fileSize: bytes.count) }
            headers.append(header)
        }
        programHeaders = headers
        self.executableStack = executableStack
        self.interpreter = interpreter
        let loads = headers.filter { $0.type == ProgramHeader.load }
        guard !loads.isEmpty else { throw .noLoadableSegments }
        // Linux requires PT_LOAD segments in ascending address order.
        for (previous, next) in zip(loads, loads.dropFirst()) where next.virtualAddress < previous.virtualAddress {
            throw .badProgramHeaders("PT_LOAD segments out of order")
        }
    }

    /// load_elf_binary's reading of PT_INTERP: 2 to PATH_MAX bytes inside the
    /// file, the last one NUL; anything else is ENOEXEC. The first one counts.
    private static func interpreterName(_ header: ProgramHeader, bytes: UnsafeRawBufferPointer) throws(ParseError)
        -> String {
        guard header.fileSize >= 2, header.fileSize <= UInt64(LinuxFile.pathMax) else {
            throw .badInterpreter("size \(header.fileSize)")
        }
        let (end, overflow) = header.offset.addingReportingOverflow(header.fileSize)
        guard !overflow, end <= UInt64(bytes.count) else { throw .badInterpreter("runs past the end of the file") }
        let name = bytes[Int(header.offset)..<Int(end)]
        guard name.last == 0 else { throw .badInterpreter("not NUL-terminated") }
        return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func check(_ header: ProgramHeader, index: Int, fileSize: Int) throws(ParseError) {
        guard header.fileSize <= header.memorySize else {
            throw .badSegment(index: index, "file size \(header.fileSize) exceeds memory size \(header.memorySize)")
        }
        let (fileEnd, fileOverflow) = header.offset.addingReportingOverflow(header.fileSize)
        guard !fileOverflow, fileEnd <= UInt64(fileSize) else {
            throw .badSegment(index: index, "bytes \(header.offset)+\(header.fileSize) run past the end of the file")
        }
        let (memoryEnd, memoryOverflow) = header.virtualAddress.addingReportingOverflow(header.memorySize)
        guard !memoryOverflow, memoryEnd <= MemoryManager.maxAddress else {
            throw .badSegment(index: index, "addresses run past the user address space")
        }
        guard header.offset & Page.mask == header.virtualAddress & Page.mask else {
            throw .badSegment(index: index, "offset and address differ modulo the page size")
        }
    }
}

extension UnsafeRawBufferPointer {
    /// A little-endian integer at `offset`; callers check bounds first.
    func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension Array where Element == UInt8 {
    /// A little-endian integer at `offset`; callers check bounds first.
    func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        withUnsafeBytes { $0.load(type, at: offset) }
    }
}

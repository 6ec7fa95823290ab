import Platform

/// Why exec failed: the errno the application (or runsc) sees, and what was wrong.
public struct ExecError: Error, Sendable, CustomStringConvertible {
    public var errno: SyscallError
    public var message: String

    public init(_ errno: SyscallError, _ message: String) {
        self.errno = errno
        self.message = message
    }

    public var description: String { "\(message) (\(errno))" }
}

/// Loads a static (ET_EXEC) or static-PIE (ET_DYN) x86_64 executable into an
/// empty MemoryManager and builds the initial stack as Linux's
/// load_elf_binary/create_elf_tables do: strings, AT_RANDOM bytes, auxv,
/// envp, argv, argc, with rsp 16-byte aligned at argc.
public enum ELFLoader {
    /// Where ET_DYN executables are placed (Linux's ELF_ET_DYN_BASE without randomization).
    public static let dynamicBase: UInt64 = 0x5555_5555_4000
    /// MAX_ARG_STRLEN: one argument or environment string at most 32 pages.
    public static let maxArgumentLength = 32 * 4096
    static let stackGuardGap: UInt64 = 256 * Page.size
    static let minimumMmapGap: UInt64 = 128 << 20

    public enum AuxvType {
        public static let null: UInt64 = 0, phdr: UInt64 = 3, phent: UInt64 = 4, phnum: UInt64 = 5
        public static let pagesz: UInt64 = 6, base: UInt64 = 7, flags: UInt64 = 8, entry: UInt64 = 9
        public static let uid: UInt64 = 11, euid: UInt64 = 12, gid: UInt64 = 13, egid: UInt64 = 14
        public static let platform: UInt64 = 15, hwcap: UInt64 = 16, clktck: UInt64 = 17
        public static let secure: UInt64 = 23, random: UInt64 = 25, hwcap2: UInt64 = 26
        public static let execfn: UInt64 = 31, sysinfoEHDR: UInt64 = 33, minsigstksz: UInt64 = 51
    }

    /// What the new program starts with.
    public struct Image: Sendable {
        public var registers: Registers
        public var auxv: [(UInt64, UInt64)]
        public var stackPointer: UInt64
    }

    /// Reads a dynamically linked executable's interpreter: its path as the
    /// sandbox names it (for the mappings' names) and its bytes.
    public typealias InterpreterReader = (String) throws(ExecError) -> (path: String, bytes: ExecutableBytes)

    /// `load(_:path:execfn:argv:envp:into:credentials:stackLimit:randomize:readInterpreter:)` of an array's bytes.
    public static func load(_ bytes: [UInt8], path: String, execfn: String? = nil, argv: [String], envp: [String],
                            into mm: MemoryManager, credentials: Credentials, secure: Bool = false,
                            stackLimit: UInt64, randomize: Bool = false,
                            readInterpreter: InterpreterReader = noInterpreter) throws(ExecError) -> Image {
        try load(ExecutableBytes(bytes: bytes), path: path, execfn: execfn, argv: argv, envp: envp, into: mm,
                 credentials: credentials, secure: secure, stackLimit: stackLimit, randomize: randomize,
                 readInterpreter: readInterpreter)
    }

    /// Loads `bytes` (the whole executable file) as `path` with `argv` and
    /// `envp`; `execfn` is the name exec was given (AT_EXECFN), `path` by default.
    /// A PT_INTERP executable also gets its interpreter, read by `readInterpreter`,
    /// loaded just below the mmap base; it starts there with AT_BASE pointing at it.
    /// With `randomize` the stack top, the mmap base (so the interpreter's),
    /// an ET_DYN executable's load address, the heap's start and the initial
    /// stack pointer move by random amounts as on Linux x86-64 (see
    /// `Randomization`); without it every base is Linux's under
    /// ADDR_NO_RANDOMIZE (`setarch -R`), so runs repeat exactly.
    public static func load(_ bytes: ExecutableBytes, path: String, execfn: String? = nil, argv: [String],
                            envp: [String], into mm: MemoryManager, credentials: Credentials, secure: Bool = false,
                            stackLimit: UInt64, randomize: Bool = false,
                            readInterpreter: InterpreterReader = noInterpreter) throws(ExecError) -> Image {
        let elf = try parse(bytes.raw, path: path)
        let random = randomize ? Randomization.random() : Randomization.none
        let lowest = Page.roundDown(elf.loadSegments[0].virtualAddress)
        let bias = elf.type == .shared ? loadAddress(elf, random) &- lowest : 0
        // Where the program starts: its segments and its interpreter's, which the
        // first run maps up front (`MemoryManager.prefaultNewStub`).
        var segments: [UInt64] = []
        let end = try mapImage(elf, bias: bias, bytes: bytes, into: mm, path: path, starts: &segments)
        guard let dataEnd = Page.roundUp(end) else { throw ExecError(.enoexec, "\(path): bad segment end") }
        // load_elf_binary leaves a page between the data and a randomised heap
        // (mapImage keeps `end` below maxAddress, so this cannot overflow).
        let brkStart = randomize ? dataEnd + Page.size + random.brk : dataEnd

        // The stack: rlimit-sized (8 MiB by default), faulted in lazily.
        let stackSize = min(max(stackLimit == Limits.infinity ? 8 << 20 : Page.roundUp(stackLimit) ?? (8 << 20),
                                128 << 10), 1 << 30)
        let stackTop = MemoryManager.maxAddress - random.stack
        var stackRequest = MemoryManager.MappingRequest(address: stackTop - stackSize, length: stackSize,
                                                        protection: elf.executableStack ? .all : [.read, .write],
                                                        shared: false)
        stackRequest.fixed = true
        stackRequest.growsDown = true
        stackRequest.name = "[stack]"
        do throws(SyscallError) {
            _ = try mm.map(stackRequest)
        } catch {
            throw ExecError(error, "\(path): cannot map the stack")
        }
        // mmap_base: below the stack's rlimit, its guard gap and the most the
        // stack top may have moved, then by a random amount of its own.
        let stackPad = stackGuardGap + (randomize ? Randomization.stackRange : 0)
        let gap = min(max(stackSize + stackPad, minimumMmapGap), MemoryManager.maxAddress / 6 * 5)
        var mmapBase = Page.roundDown(MemoryManager.maxAddress - gap - random.mmap)

        let phdr = programHeaderAddress(elf, bias: bias)
        let entry = elf.entry &+ bias
        var start = entry
        var interpreterBase: UInt64 = 0
        if let name = elf.interpreter {
            let interpreter = try readInterpreter(name)
            let interpreterELF: ELFFile
            do {
                interpreterELF = try ELFFile(interpreter.bytes.raw)
            } catch {
                throw ExecError(interpreterErrno(error), "\(path): interpreter \(interpreter.path): \(error)")
            }
            var interpreterBias: UInt64 = 0
            if interpreterELF.type == .shared {
                // load_elf_interp maps an ET_DYN interpreter where mmap would put it: top-down below the mmap base.
                let low = Page.roundDown(interpreterELF.loadSegments[0].virtualAddress)
                let high = interpreterELF.loadSegments.map { $0.virtualAddress &+ $0.memorySize }.max() ?? low
                guard let span = Page.roundUp(high &- low), span < mmapBase - MemoryManager.minAddress else {
                    throw ExecError(.enoexec, "\(interpreter.path): segments do not fit the address space")
                }
                interpreterBase = mmapBase - span
                interpreterBias = interpreterBase &- low
                mmapBase = interpreterBase
            }
            _ = try mapImage(interpreterELF, bias: interpreterBias, bytes: interpreter.bytes, into: mm,
                             path: interpreter.path, starts: &segments)
            start = interpreterELF.entry &+ interpreterBias
        }
        let vdso: UInt64
        do throws(SyscallError) {
            vdso = try mm.mapVDSO(below: mmapBase)
        } catch {
            throw ExecError(error, "\(path): cannot map the vDSO")
        }
        mmapBase = vdso - VDSO.dataSize
        // glibc reads the vDSO's ELF header first thing.
        segments.append(vdso)
        let phnum = UInt64(elf.programHeaders.count)
        let builder = StackBuilder(mm: mm, top: stackTop, alignmentOffset: random.stackPointer)
        let layout: StackBuilder.Layout
        do throws(SyscallError) {
            layout = try builder.build(argv: argv, envp: envp, execfn: execfn ?? path) { execfn, random, platform in
                auxiliaryVector(vdso: vdso, phdr: phdr, phnum: phnum, base: interpreterBase, entry: entry,
                                credentials: credentials, secure: secure, execfn: execfn, random: random,
                                platform: platform)
            }
        } catch {
            throw ExecError(error, "\(path): cannot build the initial stack")
        }
        mm.setLayout(brkStart: brkStart, stackTop: stackTop, mmapBase: mmapBase, argv: layout.argv,
                     env: layout.env, auxv: layout.auxv.flatMap { [$0.0, $0.1] }, executablePath: path,
                     startupAddresses: segments)
        let registers = Registers(rip: start, rsp: layout.stackPointer)
        return Image(registers: registers, auxv: layout.auxv, stackPointer: layout.stackPointer)
    }

    /// Where an ET_DYN executable goes, as load_elf_binary places one:
    /// ELF_ET_DYN_BASE plus arch_mmap_rnd(), aligned down to the largest
    /// PT_LOAD alignment that is a power of two above a page.
    static func loadAddress(_ elf: ELFFile, _ random: Randomization) -> UInt64 {
        var base = dynamicBase + random.load
        let alignment = elf.loadSegments.map(\.alignment).filter { $0 > Page.size && $0.nonzeroBitCount == 1 }.max()
        if let alignment { base &= ~(alignment - 1) }
        return base
    }

    /// The random offsets of one exec's layout, drawn from the Sentry's
    /// random source with Linux x86-64's entropy (LinuxLayout), all zero
    /// under ADDR_NO_RANDOMIZE. They end up in the MM's saved bases and in
    /// the saved mappings, so a restored process keeps its layout.
    struct Randomization {
        /// How far below the highest user address the stack top is (randomize_stack_top).
        var stack: UInt64
        /// How far the mmap base moves down (arch_mmap_rnd in mmap_base).
        var mmap: UInt64
        /// How far above ELF_ET_DYN_BASE an ET_DYN executable goes (arch_mmap_rnd).
        var load: UInt64
        /// How far above the page after the data the heap starts (arch_randomize_brk).
        var brk: UInt64
        /// How far below the strings the initial stack pointer goes (arch_align_stack).
        var stackPointer: UInt64

        static let none = Randomization(stack: 0, mmap: 0, load: 0, brk: 0, stackPointer: 0)
        /// stack_maxrandom_size: the most `stack` can be.
        static let stackRange = LinuxLayout.STACK_RND_MASK << Page.shift

        static func random() -> Randomization {
            let mmapPages: UInt64 = 1 << LinuxLayout.mmap_rnd_bits
            return Randomization(stack: Random.below(LinuxLayout.STACK_RND_MASK + 1) << Page.shift,
                                 mmap: Random.below(mmapPages) << Page.shift,
                                 load: Random.below(mmapPages) << Page.shift,
                                 brk: Random.below(LinuxLayout.brkRandomRange >> Page.shift) << Page.shift,
                                 stackPointer: Random.below(LinuxLayout.stackAlignRandomRange))
        }
    }

    /// An executable that has an interpreter cannot run without one.
    public static func noInterpreter(_ name: String) throws(ExecError) -> (path: String, bytes: ExecutableBytes) {
        throw ExecError(.enoent, "\(name): no interpreter available")
    }

    /// load_elf_binary's reading and checks of the interpreter: a file shorter
    /// than an ELF header is EIO (elf_read), not ELF or not x86_64 ELIBBAD;
    /// load_elf_interp's: neither ET_EXEC nor ET_DYN is EINVAL; anything else
    /// wrong with it is ENOEXEC, as for an executable.
    static func interpreterErrno(_ error: ELFFile.ParseError) -> SyscallError {
        switch error {
        case .tooShort: .eio
        case .notELF, .wrongMachine: .elibbad
        case .notExecutable: .einval
        default: .enoexec
        }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws(ExecError) -> ELFFile {
        do {
            return try ELFFile(bytes)
        } catch {
            throw ExecError(.enoexec, "\(path): \(error)")
        }
    }

    /// Maps every PT_LOAD segment of `elf` at `bias`; returns the end of the
    /// highest, and appends each segment's first page to `starts`.
    static func mapImage(_ elf: ELFFile, bias: UInt64, bytes: ExecutableBytes, into mm: MemoryManager,
                         path: String, starts: inout [UInt64]) throws(ExecError) -> UInt64 {
        let loads = elf.loadSegments
        let lowest = Page.roundDown(loads[0].virtualAddress)
        let highest = loads.map { $0.virtualAddress + $0.memorySize }.max() ?? 0
        guard highest &+ bias <= MemoryManager.maxAddress, lowest &+ bias >= MemoryManager.minAddress else {
            throw ExecError(.enoexec, "\(path): segments do not fit the address space")
        }
        var end: UInt64 = 0
        for segment in loads {
            try mapSegment(segment, bias: bias, bytes: bytes, into: mm, path: path)
            starts.append(Page.roundDown(segment.virtualAddress &+ bias))
            end = max(end, segment.virtualAddress &+ segment.memorySize &+ bias)
        }
        return end
    }

    /// Maps one PT_LOAD segment: file bytes from the start of its first page
    /// (as a file mmap would show them), zero to the end of memsz. The whole
    /// pages of a segment mapped without write share the file's pages in the
    /// memory file (copy-on-write, should an mprotect make them writable);
    /// the rest is copied.
    static func mapSegment(_ segment: ELFFile.ProgramHeader, bias: UInt64, bytes: ExecutableBytes,
                           into mm: MemoryManager, path: String) throws(ExecError) {
        // Wrapping: a static-PIE's bias is dynamicBase minus its lowest address, modulo 2^64.
        let address = segment.virtualAddress &+ bias
        let start = Page.roundDown(address)
        guard let end = Page.roundUp(address + segment.memorySize), end > start else { return }
        var request = MemoryManager.MappingRequest(address: start, length: end - start,
                                                   protection: segment.protection, shared: false)
        request.fixed = true
        request.name = path
        do throws(SyscallError) {
            _ = try mm.map(request)
            let fileStart = Int(Page.roundDown(segment.offset))
            let fileEnd = Int(segment.offset + segment.fileSize)
            var copyStart = fileStart
            if let memoryOffset = bytes.memoryOffset, !segment.protection.contains(.write) {
                let shared = UInt64(fileEnd - fileStart) & ~Page.mask
                if shared > 0 {
                    try mm.sharePages(start..<start + shared, memoryOffset: memoryOffset + UInt64(fileStart))
                    copyStart += Int(shared)
                }
            }
            if fileEnd > copyStart {
                try mm.copyOut(UnsafeRawBufferPointer(rebasing: bytes.raw[copyStart..<fileEnd]),
                               to: start + UInt64(copyStart - fileStart), force: true)
            }
        } catch {
            throw ExecError(error, "\(path): cannot load segment at \(String(address, radix: 16))")
        }
    }

    /// The auxiliary vector, in the order Linux's create_elf_tables writes it
    /// (ARCH_DLINFO's AT_SYSINFO_EHDR first: the Sentry's vDSO, never the host's).
    static func auxiliaryVector(vdso: UInt64, phdr: UInt64, phnum: UInt64, base: UInt64, entry: UInt64,
                                credentials: Credentials, secure: Bool, execfn: UInt64, random: UInt64,
                                platform: UInt64) -> [(UInt64, UInt64)] {
        var auxv: [(UInt64, UInt64)] = []
        auxv.append((AuxvType.sysinfoEHDR, vdso))
        auxv.append((AuxvType.hwcap, HostAuxv.value(AuxvType.hwcap)))
        auxv.append((AuxvType.pagesz, Page.size))
        auxv.append((AuxvType.clktck, 100))
        auxv.append((AuxvType.phdr, phdr))
        auxv.append((AuxvType.phent, UInt64(ELFFile.programHeaderSize)))
        auxv.append((AuxvType.phnum, phnum))
        auxv.append((AuxvType.base, base))
        auxv.append((AuxvType.flags, 0))
        auxv.append((AuxvType.entry, entry))
        auxv.append((AuxvType.uid, UInt64(credentials.realUID)))
        auxv.append((AuxvType.euid, UInt64(credentials.effectiveUID)))
        auxv.append((AuxvType.gid, UInt64(credentials.realGID)))
        auxv.append((AuxvType.egid, UInt64(credentials.effectiveGID)))
        auxv.append((AuxvType.secure, secure ? 1 : 0))
        auxv.append((AuxvType.random, random))
        auxv.append((AuxvType.hwcap2, HostAuxv.value(AuxvType.hwcap2)))
        auxv.append((AuxvType.execfn, execfn))
        auxv.append((AuxvType.platform, platform))
        auxv.append((AuxvType.minsigstksz, HostAuxv.value(AuxvType.minsigstksz)))
        return auxv
    }

    /// AT_PHDR: PT_PHDR's address, or where the PT_LOAD covering e_phoff puts the table.
    static func programHeaderAddress(_ elf: ELFFile, bias: UInt64) -> UInt64 {
        if let header = elf.programHeaders.first(where: { $0.type == ELFFile.ProgramHeader.programHeaders }) {
            return header.virtualAddress &+ bias
        }
        for segment in elf.loadSegments
        where segment.offset <= elf.programHeaderOffset && elf.programHeaderOffset < segment.offset + segment.fileSize {
            return segment.virtualAddress &+ (elf.programHeaderOffset - segment.offset) &+ bias
        }
        return 0
    }
}

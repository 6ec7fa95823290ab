import Testing
@testable import Sentry

/// A minimal static x86_64 executable image: header, one PT_LOAD covering the
/// whole file, and `code` at the entry point.
func makeELF(type: UInt16 = 2, machine: UInt16 = 62, base: UInt64 = 0x40_0000,
             segments: [(type: UInt32, flags: UInt32, offset: UInt64, vaddr: UInt64, filesz: UInt64, memsz: UInt64)]? = nil,
             code: [UInt8] = [0x0f, 0x05]) -> [UInt8] {
    let headerSize = 64, phSize = 56
    let loads = segments ?? [(1, 5, 0, base, UInt64(headerSize + phSize + code.count), UInt64(headerSize + phSize + code.count))]
    var bytes = [UInt8](repeating: 0, count: headerSize + phSize * loads.count)
    func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
        }
    }
    bytes[0] = 0x7f; bytes[1] = 0x45; bytes[2] = 0x4c; bytes[3] = 0x46
    bytes[4] = 2; bytes[5] = 1; bytes[6] = 1
    put(type, at: 16)
    put(machine, at: 18)
    put(UInt32(1), at: 20)
    put(base + UInt64(bytes.count), at: 24)          // entry: just after the headers
    put(UInt64(headerSize), at: 32)                    // phoff
    put(UInt16(headerSize), at: 52)
    put(UInt16(phSize), at: 54)
    put(UInt16(loads.count), at: 56)
    for (index, segment) in loads.enumerated() {
        let offset = headerSize + index * phSize
        put(segment.type, at: offset)
        put(segment.flags, at: offset + 4)
        put(segment.offset, at: offset + 8)
        put(segment.vaddr, at: offset + 16)
        put(segment.vaddr, at: offset + 24)
        put(segment.filesz, at: offset + 32)
        put(segment.memsz, at: offset + 40)
        put(UInt64(0x1000), at: offset + 48)
    }
    return bytes + code
}

@Suite struct ELFParsing {
    @Test func aMinimalStaticExecutableParses() throws {
        let elf = try ELFFile(bytes: makeELF())
        #expect(elf.type == .executable)
        #expect(elf.entry == 0x40_0000 + 64 + 56)
        #expect(elf.loadSegments.count == 1)
        #expect(elf.loadSegments[0].protection == [.read, .execute])
    }

    @Test func malformedFilesAreRejectedWithAReason() {
        var badMagic = makeELF()
        badMagic[1] = 0
        #expect(throws: ELFFile.ParseError.notELF) { try ELFFile(bytes: badMagic) }
        #expect(throws: ELFFile.ParseError.tooShort) { try ELFFile(bytes: Array(makeELF().prefix(20))) }
        var thirtyTwoBit = makeELF()
        thirtyTwoBit[4] = 1
        #expect(throws: ELFFile.ParseError.not64Bit) { try ELFFile(bytes: thirtyTwoBit) }
        #expect(throws: ELFFile.ParseError.wrongMachine(183)) { try ELFFile(bytes: makeELF(machine: 183)) }
        #expect(throws: ELFFile.ParseError.notExecutable(type: 1)) { try ELFFile(bytes: makeELF(type: 1)) }
        #expect(throws: ELFFile.ParseError.noLoadableSegments) {
            try ELFFile(bytes: makeELF(segments: [(4, 4, 0, 0x40_0000, 0, 0)]))
        }
    }

    @Test func segmentsThatLieAboutTheFileAreRejected() {
        let pastEnd = makeELF(segments: [(1, 5, 0, 0x40_0000, 1 << 20, 1 << 20)])
        #expect(throws: ELFFile.ParseError.self) { try ELFFile(bytes: pastEnd) }
        let fileBiggerThanMemory = makeELF(segments: [(1, 5, 0, 0x40_0000, 100, 50)])
        #expect(throws: ELFFile.ParseError.self) { try ELFFile(bytes: fileBiggerThanMemory) }
        let misaligned = makeELF(segments: [(1, 5, 0, 0x40_0010, 100, 100)])
        #expect(throws: ELFFile.ParseError.self) { try ELFFile(bytes: misaligned) }
        let beyondUserSpace = makeELF(segments: [(1, 5, 0, 0x7fff_ffff_f000, 100, 0x10000)])
        #expect(throws: ELFFile.ParseError.self) { try ELFFile(bytes: beyondUserSpace) }
        let overflowing = makeELF(segments: [(1, 5, UInt64.max - 10, 0x40_0000, 100, 100)])
        #expect(throws: ELFFile.ParseError.self) { try ELFFile(bytes: overflowing) }
    }

    @Test func dynamicallyLinkedExecutablesNameTheirInterpreter() throws {
        var bytes = makeELF(segments: [(3, 4, 200, 0, 28, 28), (1, 5, 0, 0x40_0000, 300, 300)])
        bytes += [UInt8](repeating: 0, count: 300 - bytes.count)
        let name = Array("/lib64/ld-linux-x86-64.so.2".utf8) + [0]
        bytes.replaceSubrange(200..<228, with: name)
        #expect(try ELFFile(bytes: bytes).interpreter == "/lib64/ld-linux-x86-64.so.2")
        // load_elf_binary: the name must end in NUL and take 2 to PATH_MAX bytes.
        bytes[227] = 0x41
        #expect(throws: ELFFile.ParseError.badInterpreter("not NUL-terminated")) { try ELFFile(bytes: bytes) }
        let tooShort = makeELF(segments: [(3, 4, 200, 0, 1, 1), (1, 5, 0, 0x40_0000, 300, 300)])
        #expect(throws: ELFFile.ParseError.self) { try ELFFile(bytes: tooShort + [UInt8](repeating: 0, count: 200)) }
    }

    @Test func badExecutablesAreENOEXECFromTheLoader() throws {
        let (mm, _) = try makeMM()
        #expect(throws: ExecError.self) {
            try ELFLoader.load([1, 2, 3], path: "/bad", argv: ["/bad"], envp: [], into: mm,
                               credentials: Credentials(), stackLimit: 8 << 20)
        }
        do {
            _ = try ELFLoader.load([1, 2, 3], path: "/bad", argv: ["/bad"], envp: [], into: mm,
                                   credentials: Credentials(), stackLimit: 8 << 20)
        } catch {
            #expect(error.errno == .enoexec)
        }
    }
}

@Suite struct InitialStack {
    func load(pie: Bool = false) throws -> (MemoryManager, ELFLoader.Image) {
        let (mm, _) = try makeMM()
        let image = try ELFLoader.load(makeELF(type: pie ? 3 : 2, base: pie ? 0 : 0x40_0000), path: "/bin/prog",
                                       argv: ["prog", "arg one"], envp: ["A=1", "B=2"], into: mm,
                                       credentials: Credentials(uid: 1000, gid: 100), stackLimit: 8 << 20)
        return (mm, image)
    }

    /// With randomisation each base moves within Linux x86-64's range
    /// (LinuxLayout) and every load draws anew; without, the bases are fixed.
    @Test func aRandomisedLayoutStaysInLinuxsRanges() throws {
        var seen: Set<[UInt64]> = []
        for _ in 0..<8 {
            let (mm, _) = try makeMM()
            let image = try ELFLoader.load(makeELF(type: 3, base: 0), path: "/bin/prog", argv: ["prog"], envp: [],
                                           into: mm, credentials: Credentials(), stackLimit: 8 << 20, randomize: true)
            let top = MemoryManager.maxAddress
            let stackRange: UInt64 = 0x3f_ffff << 12, tebibyte: UInt64 = 1 << 40
            #expect(mm.stackTop % 4096 == 0 && mm.stackTop <= top && mm.stackTop >= top - stackRange)
            #expect(image.stackPointer % 16 == 0 && image.stackPointer < mm.stackTop - 8)
            #expect(image.stackPointer > mm.stackTop - 8192 - 4096)
            let base = image.registers.rip - 64 - 56
            #expect(base % 4096 == 0 && base >= ELFLoader.dynamicBase && base < ELFLoader.dynamicBase + tebibyte)
            let gap = (8 << 20) + 256 * 4096 + stackRange
            #expect(mm.mmapBase % 4096 == 0 && mm.mmapBase <= top - gap && mm.mmapBase >= top - gap - tebibyte)
            let dataEnd = base + 4096
            #expect(mm.brkStart % 4096 == 0 && mm.brkStart >= dataEnd + 4096 && mm.brkStart < dataEnd + 4096 + (1 << 30))
            seen.insert([mm.stackTop, image.stackPointer, base, mm.mmapBase, mm.brkStart])
        }
        #expect(seen.count == 8)
    }

    func word(_ mm: MemoryManager, _ address: UInt64) throws -> UInt64 {
        try mm.copyIn(from: address, count: 8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    @Test func argcArgvEnvpAndAuxvAreLaidOutAsLinuxDoes() throws {
        let (mm, image) = try load()
        let sp = image.stackPointer
        #expect(sp % 16 == 0)
        #expect(image.registers.rsp == sp)
        #expect(try word(mm, sp) == 2)
        #expect(try mm.copyInString(from: try word(mm, sp + 8), maxLength: 100) == "prog")
        #expect(try mm.copyInString(from: try word(mm, sp + 16), maxLength: 100) == "arg one")
        #expect(try word(mm, sp + 24) == 0)
        #expect(try mm.copyInString(from: try word(mm, sp + 32), maxLength: 100) == "A=1")
        #expect(try mm.copyInString(from: try word(mm, sp + 40), maxLength: 100) == "B=2")
        #expect(try word(mm, sp + 48) == 0)
        var auxv: [UInt64: UInt64] = [:]
        var cursor = sp + 56
        while true {
            let key = try word(mm, cursor), value = try word(mm, cursor + 8)
            if key == 0 { break }
            auxv[key] = value
            cursor += 16
        }
        typealias AT = ELFLoader.AuxvType
        #expect(auxv[AT.pagesz] == 4096)
        #expect(auxv[AT.entry] == image.registers.rip)
        #expect(auxv[AT.phdr] == 0x40_0000 + 64)
        #expect(auxv[AT.phent] == 56)
        #expect(auxv[AT.phnum] == 1)
        #expect(auxv[AT.base] == 0)
        #expect(auxv[AT.uid] == 1000)
        #expect(auxv[AT.gid] == 100)
        #expect(auxv[AT.secure] == 0)
        #expect(auxv[AT.clktck] == 100)
        // AT_SYSINFO_EHDR: the Sentry's vDSO, an ELF image mapped as [vdso] above its [vvar] page.
        let vdso = try #require(auxv[AT.sysinfoEHDR])
        #expect(try mm.copyIn(from: vdso, count: 4) == Kernel.elfMagic)
        let names = mm.mappings.map { ($0.start, $0.name) }
        #expect(names.contains { $0 == (vdso, "[vdso]") })
        #expect(names.contains { $0 == (vdso - 4096, "[vvar]") })
        let random = try #require(auxv[AT.random])
        #expect(try mm.copyIn(from: random, count: 16).count == 16)
        #expect(try mm.copyInString(from: try #require(auxv[AT.execfn]), maxLength: 100) == "/bin/prog")
        #expect(try mm.copyInString(from: try #require(auxv[AT.platform]), maxLength: 100) == "x86_64")
        #expect(mm.argvRange.count == "prog\0arg one\0".utf8.count)
        #expect(try mm.copyIn(from: mm.argvRange.lowerBound, count: mm.argvRange.count)
                == Array("prog\0arg one\0".utf8))
    }

    @Test func staticPIEIsPlacedAtTheDynamicBase() throws {
        let (_, image) = try load(pie: true)
        #expect(image.registers.rip == ELFLoader.dynamicBase + 64 + 56)
    }

    @Test func aStaticPIELinkedAboveTheDynamicBaseIsMovedDown() throws {
        let (mm, _) = try makeMM()
        let image = try ELFLoader.load(makeELF(type: 3, base: 0x6000_0000_0000), path: "/p", argv: ["p"], envp: [],
                                       into: mm, credentials: Credentials(), stackLimit: 8 << 20)
        #expect(image.registers.rip == ELFLoader.dynamicBase + 64 + 56)
    }

    @Test func segmentsAreMappedWithTheirProtectionsAndTheStackIsReadWrite() throws {
        let (mm, _) = try load()
        let mappings = mm.mappings
        #expect(mappings.first?.start == 0x40_0000)
        #expect(mappings.first?.protection == [.read, .execute])
        #expect(mappings.last?.name == "[stack]")
        #expect(mappings.last?.end == MemoryManager.maxAddress)
        #expect(mappings.last?.protection == [.read, .write])
        #expect(try mm.copyIn(from: 0x40_0000, count: 4) == [0x7f, 0x45, 0x4c, 0x46])
    }

    /// A PT_INTERP executable starts in its interpreter, mapped just below the
    /// mmap base, with AT_BASE at the interpreter and AT_ENTRY at the program.
    @Test func anInterpreterIsLoadedBelowTheMmapBaseAndStartsFirst() throws {
        var program = makeELF(segments: [(3, 4, 200, 0, 28, 28), (1, 5, 0, 0x40_0000, 300, 300)])
        program += [UInt8](repeating: 0, count: 300 - program.count)
        program.replaceSubrange(200..<228, with: Array("/lib64/ld-linux-x86-64.so.2".utf8) + [0])
        let interpreter = makeELF(type: 3, base: 0)
        let (mm, _) = try makeMM()
        var asked: [String] = []
        let image = try ELFLoader.load(program, path: "/bin/prog", argv: ["prog"], envp: [], into: mm,
                                       credentials: Credentials(), stackLimit: 8 << 20) { name throws(ExecError) in
            asked.append(name)
            return ("/lib/ld.so", ExecutableBytes(bytes: interpreter))
        }
        #expect(asked == ["/lib64/ld-linux-x86-64.so.2"])
        let auxv = Dictionary(image.auxv, uniquingKeysWith: { first, _ in first })
        typealias AT = ELFLoader.AuxvType
        let base = try #require(auxv[AT.base])
        // The vDSO goes just below the interpreter, as Linux's map_vdso puts it, and mmap below both.
        #expect(base != 0 && auxv[AT.sysinfoEHDR] == base - VDSO.textSize)
        #expect(mm.mmapBase == base - VDSO.size)
        #expect(image.registers.rip == base + 64 + 56, "ld.so's entry")
        #expect(auxv[AT.entry] == 0x40_0000 + 64 + 2 * 56, "the program's entry")
        #expect(auxv[AT.phnum] == 2)
        #expect(mm.mappings.contains { $0.start == base && $0.name == "/lib/ld.so" })
        #expect(try mm.copyIn(from: base, count: 4) == [0x7f, 0x45, 0x4c, 0x46])

        // An interpreter that is not an x86_64 ELF file is ELIBBAD, one of the wrong type EINVAL.
        for (bytes, errno) in [(Array("#!/bin/sh\n".utf8) + [UInt8](repeating: 0, count: 64), SyscallError.elibbad),
                               (makeELF(machine: 3), .elibbad), (makeELF(type: 1), .einval)] {
            let (other, _) = try makeMM()
            do {
                _ = try ELFLoader.load(program, path: "/bin/prog", argv: ["prog"], envp: [], into: other,
                                       credentials: Credentials(), stackLimit: 8 << 20) { _ throws(ExecError) in
                    ("/lib/ld.so", ExecutableBytes(bytes: bytes))
                }
                Issue.record("loaded with a bad interpreter")
            } catch {
                #expect(error.errno == errno)
            }
        }

        // Without an interpreter to load, exec fails as Linux's open_exec of a missing file.
        let (other, _) = try makeMM()
        do {
            _ = try ELFLoader.load(program, path: "/bin/prog", argv: ["prog"], envp: [], into: other,
                                   credentials: Credentials(), stackLimit: 8 << 20)
            Issue.record("loaded without its interpreter")
        } catch {
            #expect(error.errno == .enoent)
        }
    }

    @Test func hugeArgumentsAreE2BIG() throws {
        let (mm, _) = try makeMM()
        #expect(throws: ExecError.self) {
            try ELFLoader.load(makeELF(), path: "/p", argv: [String(repeating: "x", count: 200_000)], envp: [],
                               into: mm, credentials: Credentials(), stackLimit: 8 << 20)
        }
    }
}

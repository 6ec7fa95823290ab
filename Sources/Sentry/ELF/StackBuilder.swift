/// Builds a new program's initial stack in one buffer and copies it out once.
/// From the top of the stack down, as Linux lays it out: a NULL word, the
/// executable's name (AT_EXECFN), the environment strings, the argument
/// strings, the platform string, 16 random bytes (AT_RANDOM), then (16-byte
/// aligned) argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL.
struct StackBuilder {
    let mm: MemoryManager
    let top: UInt64
    /// How far below the strings the rest goes before its 16-byte alignment
    /// (arch_align_stack's random part; below 8,192 bytes, 0 without randomisation).
    var alignmentOffset: UInt64 = 0

    struct Layout {
        var stackPointer: UInt64
        var argv: Range<UInt64>
        var env: Range<UInt64>
        var auxv: [(UInt64, UInt64)]
    }

    static let platform = "x86_64"

    /// `auxv` gets the addresses of AT_EXECFN, AT_RANDOM and AT_PLATFORM and
    /// returns the vector without AT_NULL.
    func build(argv: [String], envp: [String], execfn: String,
               auxv makeAuxv: (UInt64, UInt64, UInt64) -> [(UInt64, UInt64)]) throws(SyscallError) -> Layout {
        // The bytes from `cursor` up, a piece per push, each below the one before
        // (prepending to one buffer instead would be quadratic in the strings).
        var pieces: [[UInt8]] = []
        var cursor = top - 8
        func push(_ text: String) throws(SyscallError) -> UInt64 {
            let bytes = Array(text.utf8) + [0]
            guard bytes.count <= ELFLoader.maxArgumentLength else { throw .e2big }
            cursor -= UInt64(bytes.count)
            pieces.append(bytes)
            return cursor
        }
        let execfnAddress = try push(execfn)
        let envEnd = cursor
        var envAddresses: [UInt64] = []
        for value in envp.reversed() { envAddresses.append(try push(value)) }
        envAddresses.reverse()
        let argvEnd = cursor
        var argvAddresses: [UInt64] = []
        for value in argv.reversed() { argvAddresses.append(try push(value)) }
        argvAddresses.reverse()
        let argvStart = cursor
        guard top - cursor <= 6 << 20 else { throw .e2big }

        var pad = Int(alignmentOffset + ((cursor - alignmentOffset) & 15))
        cursor -= UInt64(pad)
        pieces.append([UInt8](repeating: 0, count: pad))
        let platformAddress = try push(StackBuilder.platform)
        var random = [UInt8](repeating: 0, count: 16)
        Random.fill(&random)
        cursor -= 16
        let randomAddress = cursor
        pieces.append(random)

        let auxv = makeAuxv(execfnAddress, randomAddress, platformAddress) + [(ELFLoader.AuxvType.null, 0)]
        let words = 1 + argv.count + 1 + envp.count + 1 + auxv.count * 2
        var stackPointer = cursor - UInt64(words * 8)
        pad = Int(stackPointer & 15)
        stackPointer -= UInt64(pad)

        var table: [UInt64] = [UInt64(argv.count)] + argvAddresses + [0] + envAddresses + [0]
        for (key, value) in auxv { table += [key, value] }
        var image: [UInt8] = []
        image.reserveCapacity(Int(top - stackPointer))
        for word in table { withUnsafeBytes(of: word.littleEndian) { image.append(contentsOf: $0) } }
        // Between the table and the strings: alignment padding (zero).
        let gap = Int(cursor - stackPointer) - image.count
        image += [UInt8](repeating: 0, count: gap)
        for piece in pieces.reversed() { image += piece }
        image += [UInt8](repeating: 0, count: Int(top - stackPointer) - image.count)

        var failure: SyscallError?
        image.withUnsafeBytes { raw in
            do throws(SyscallError) { try mm.copyOut(raw, to: stackPointer, force: true) } catch { failure = error }
        }
        if let failure { throw failure }
        return Layout(stackPointer: stackPointer, argv: argvStart..<argvEnd, env: argvEnd..<envEnd, auxv: auxv)
    }
}

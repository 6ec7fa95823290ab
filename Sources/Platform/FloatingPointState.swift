import CShim

/// An application thread's FP/SSE/AVX state: the XSAVE area in the standard
/// (non-compacted) layout that PTRACE_GETREGSET NT_X86_XSTATE uses. A plain
/// value so the Sentry can keep it in the Task and save it; its size is the
/// host's (`hostSize`), which a restore on another host must check.
public struct FloatingPointState: Equatable, Hashable, Sendable {
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The XSAVE area size for the features this host enables (CPUID leaf 0xD).
    public static let hostSize = Int(cshim_xsave_size())

    /// The state Linux gives a new process: x87 control word 0x37f, MXCSR
    /// 0x1f80 (all exceptions masked), every register zero.
    public static func initial(size: Int = hostSize) -> FloatingPointState {
        var bytes = [UInt8](repeating: 0, count: max(size, 576))
        bytes[0] = 0x7f; bytes[1] = 0x03            // FCW
        bytes[24] = 0x80; bytes[25] = 0x1f          // MXCSR
        bytes[28] = 0xff; bytes[29] = 0xff          // MXCSR_MASK as the CPU reports it
        bytes[512] = 0x03                           // XSTATE_BV: x87 and SSE present
        return FloatingPointState(bytes: bytes)
    }

    /// The legacy FXSAVE region at the start of the area (x87 and SSE).
    public static let legacySize = 512
    /// The legacy region's last 48 bytes, reserved for software: XSAVE and
    /// XRSTOR leave them alone, Linux puts its fx_sw_bytes there.
    public static let softwareReservedRange = 464..<512
    /// The XSAVE header after it; its first 8 bytes are XSTATE_BV.
    public static let headerSize = 64
    /// XSTATE_BV's x87 and SSE bits (XFEATURE_MASK_FPSSE).
    public static let legacyFeatures: UInt64 = 0x3

    /// XSTATE_BV's AVX bit: the upper halves of the YMM registers.
    public static let avxFeature: UInt64 = 0x4

    /// AVX-512's components: the opmask registers, the upper halves of
    /// ZMM0-15 and ZMM16-31. Data registers only, all caller-saved.
    public static let avx512Features: UInt64 = 0xe0

    /// XSTATE_BV's PKRU bit, and where the standard layout keeps PKRU (0 on
    /// a CPU without it).
    public static let pkruFeature: UInt64 = 0x200
    public static let pkruOffset = Int(cshim_xsave_component_offset(9))

    /// Whether the state holds what a function may rely on at its entry,
    /// as in the initial state: x87 control word 0x37f, an empty x87 stack
    /// (tags empty, top 0), MXCSR's control bits 0x1f80, no component in
    /// use beyond x87, SSE, AVX and AVX-512, and PKRU, if in use, granting
    /// key 0. The register contents and the exception flags may differ: the
    /// ABI leaves them unspecified at a call (the flags are caller-saved, and
    /// sticky: any inexact double result sets one). PKRU's other keys guard
    /// no page here (the kernel tags none: no pkey_mprotect), so only key 0
    /// matters; Linux gives a handler its default PKRU, which grants it.
    public var controlsAreInitial: Bool {
        guard bytes.count >= Self.legacySize + Self.headerSize else { return false }
        let x87Top: UInt16 = 0x3800
        let mxcsrFlags: UInt32 = 0x3f
        return bytes.withUnsafeBytes { raw in
            let features = raw.loadUnaligned(fromByteOffset: Self.legacySize, as: UInt64.self)
            guard raw.loadUnaligned(fromByteOffset: 0, as: UInt16.self) == 0x037f,
                  raw.loadUnaligned(fromByteOffset: 2, as: UInt16.self) & x87Top == 0,
                  raw[4] == 0,
                  raw.loadUnaligned(fromByteOffset: 24, as: UInt32.self) & ~mxcsrFlags == 0x1f80,
                  features & ~(Self.legacyFeatures | Self.avxFeature | Self.avx512Features | Self.pkruFeature) == 0
            else { return false }
            guard features & Self.pkruFeature != 0 else { return true }
            let keyZeroDenied: UInt32 = 0x3
            return Self.pkruOffset >= Self.legacySize + Self.headerSize
                && Self.pkruOffset + MemoryLayout<UInt32>.size <= raw.count
                && raw.loadUnaligned(fromByteOffset: Self.pkruOffset, as: UInt32.self) & keyZeroDenied == 0
        }
    }

    /// Whether each component of `features` holds its initial bytes in
    /// `area` (an XSAVE area, standard layout); false for a component not
    /// known here. x87: control word 0x37f, everything else zero; SSE: the
    /// XMM registers zero; AVX: the YMM upper halves zero.
    public static func componentsAreInitial(_ features: UInt64, in area: UnsafeRawBufferPointer) -> Bool {
        guard features & ~(legacyFeatures | avxFeature) == 0 else { return false }
        func zero(_ range: Range<Int>) -> Bool {
            guard range.upperBound <= area.count else { return false }
            var bits: UInt8 = 0
            for offset in range { bits |= area[offset] }
            return bits == 0
        }
        if features & 0x1 != 0 {
            guard area.count >= 2, area.loadUnaligned(fromByteOffset: 0, as: UInt16.self) == 0x037f,
                  zero(2..<24), zero(32..<xmmOffset(0)) else { return false }
        }
        if features & 0x2 != 0, !zero(xmmOffset(0)..<xmmOffset(16)) { return false }
        if features & avxFeature != 0, !zero(avxOffset..<(avxOffset + 256)) { return false }
        return true
    }

    /// Byte offset of the AVX component (the YMM upper halves), fixed in the
    /// standard layout.
    public static let avxOffset = 576

    /// Byte offset of XMM register `n` in the legacy region of the XSAVE area.
    public static func xmmOffset(_ n: Int) -> Int { 160 + 16 * n }
}

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
    /// The XSAVE header after it; its first 8 bytes are XSTATE_BV.
    public static let headerSize = 64
    /// XSTATE_BV's x87 and SSE bits (XFEATURE_MASK_FPSSE).
    public static let legacyFeatures: UInt64 = 0x3

    /// Byte offset of XMM register `n` in the legacy region of the XSAVE area.
    public static func xmmOffset(_ n: Int) -> Int { 160 + 16 * n }
}

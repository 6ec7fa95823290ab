import Platform
import Testing

/// What the FP state says without a host call: whether a handler may start
/// with it, and whether two states differing in XSTATE_BV are one.
@Suite struct FloatingPointStateTests {
    private func with(_ state: FloatingPointState, _ changes: [(Int, UInt8)]) -> FloatingPointState {
        var changed = state
        for (offset, value) in changes { changed.bytes[offset] = value }
        return changed
    }

    @Test func controlsAreInitialIgnoresRegistersAndFlagsOnly() {
        let initial = FloatingPointState.initial()
        #expect(initial.controlsAreInitial)
        let xmm3 = FloatingPointState.xmmOffset(3)
        #expect(with(initial, [(xmm3, 0x42)]).controlsAreInitial, "register contents are unspecified at a call")
        #expect(with(initial, [(24, 0xa0)]).controlsAreInitial, "MXCSR's sticky inexact flag")
        #expect(with(initial, [(512, 0x07)]).controlsAreInitial, "AVX in use")
        #expect(!with(initial, [(25, 0x3f)]).controlsAreInitial, "rounding down")
        #expect(!with(initial, [(24, 0x00)]).controlsAreInitial, "exceptions unmasked")
        #expect(!with(initial, [(1, 0x0c)]).controlsAreInitial, "x87 rounding toward zero")
        #expect(!with(initial, [(4, 0x01)]).controlsAreInitial, "a value on the x87 stack")
        #expect(!with(initial, [(3, 0x38)]).controlsAreInitial, "x87 top moved")
        #expect(with(initial, [(512, 0xe7)]).controlsAreInitial, "AVX-512's registers in use")
        #expect(!with(initial, [(514, 0x02)]).controlsAreInitial, "AMX tile configuration in use")
        #expect(!with(initial, [(513, 0x01)]).controlsAreInitial, "a component not known here")
    }

    /// PKRU matters for key 0 only: no page here has another key.
    @Test(.enabled(if: FloatingPointState.hostFeatures & FloatingPointState.pkruFeature != 0))
    func controlsAreInitialWithPKRUGrantingKeyZero() throws {
        let initial = FloatingPointState.initial()
        let offset = FloatingPointState.pkruOffset
        try #require(offset >= 576 && offset + 4 <= initial.bytes.count)
        let linuxDefault: [(Int, UInt8)] = [(513, 0x02), (offset, 0x54), (offset + 1, 0x55), (offset + 2, 0x55), (offset + 3, 0x55)]
        #expect(with(initial, linuxDefault).controlsAreInitial, "Linux's default PKRU, 0x55555554")
        #expect(!with(initial, linuxDefault + [(offset, 0x55)]).controlsAreInitial, "key 0 denied")
        #expect(!with(initial, linuxDefault + [(offset, 0x56)]).controlsAreInitial, "key 0 not writable")
    }

    @Test func componentsAreInitialOnlyWithTheirInitialBytes() {
        let initial = FloatingPointState.initial()
        func check(_ state: FloatingPointState, _ features: UInt64) -> Bool {
            state.bytes.withUnsafeBytes { FloatingPointState.componentsAreInitial(features, in: $0) }
        }
        #expect(check(initial, 0x7))
        #expect(!check(with(initial, [(0, 0x7e)]), 0x1), "x87 control word")
        #expect(check(with(initial, [(0, 0x7e)]), 0x2), "SSE does not hold the x87 control word")
        #expect(!check(with(initial, [(FloatingPointState.xmmOffset(15) + 15, 1)]), 0x2))
        #expect(!check(with(initial, [(FloatingPointState.avxOffset + 255, 1)]), 0x4))
        #expect(!check(initial, 0x8), "a component not known here")
    }
}

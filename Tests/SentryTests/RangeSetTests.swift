import Testing
@testable import Sentry

@Suite struct RangeSetBehaviour {
    @Test func insertsMergeTouchingAndOverlappingRanges() {
        var set = RangeSet()
        set.insert(0x1000..<0x2000)
        set.insert(0x3000..<0x4000)
        set.insert(0x2000..<0x3000)
        #expect(set.ranges == [0x1000..<0x4000])
        set.insert(0x8000..<0x9000)
        set.insert(0x3800..<0x8800)
        #expect(set.ranges == [0x1000..<0x9000])
    }

    @Test func removeSplitsARange() {
        var set = RangeSet([0x1000..<0x9000])
        set.remove(0x3000..<0x4000)
        #expect(set.ranges == [0x1000..<0x3000, 0x4000..<0x9000])
        set.remove(0..<0x2000)
        #expect(set.ranges == [0x2000..<0x3000, 0x4000..<0x9000])
        #expect(set.totalLength == 0x6000)
        #expect(set.contains(0x2fff))
        #expect(!set.contains(0x3000))
        #expect(set.overlaps(0x3000..<0x4001))
        #expect(!set.overlaps(0x3000..<0x4000))
    }

    @Test func firstGapFindsTheLowestHoleThatFits() {
        let set = RangeSet([0x0..<0x1000, 0x2000..<0x3000, 0x5000..<0x6000])
        #expect(set.firstGap(length: 0x1000, limit: 0x10000) == 0x1000)
        #expect(set.firstGap(length: 0x2000, limit: 0x10000) == 0x3000)
        #expect(set.firstGap(length: 0x3000, limit: 0x10000) == 0x6000)
        #expect(set.firstGap(length: 0x3000, limit: 0x8000) == nil)
        #expect(set.firstGap(length: 0x1000, from: 0x2800, limit: 0x10000) == 0x3000)
    }
}

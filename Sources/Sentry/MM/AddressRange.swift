/// Page arithmetic for x86_64 addresses, done without overflow traps: an
/// application-supplied length near 2^64 is an error, not a crash.
public enum Page {
    public static let size: UInt64 = 4096
    public static let shift: UInt64 = 12
    public static let mask: UInt64 = size - 1

    public static func isAligned(_ value: UInt64) -> Bool { value & mask == 0 }
    public static func roundDown(_ value: UInt64) -> UInt64 { value & ~mask }

    /// `value` rounded up to a page, or nil if that overflows.
    public static func roundUp(_ value: UInt64) -> UInt64? {
        let (sum, overflow) = value.addingReportingOverflow(mask)
        return overflow ? nil : sum & ~mask
    }
}

/// A set of disjoint, coalesced half-open ranges kept sorted: the MemoryFile's
/// used ranges. Binary search keeps inserts and lookups logarithmic in the
/// number of fragments.
public struct RangeSet: Equatable, Sendable {
    public private(set) var ranges: [Range<UInt64>] = []

    public init() {}

    public init(_ ranges: [Range<UInt64>]) {
        for range in ranges { insert(range) }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// Total length of all ranges.
    public var totalLength: UInt64 { ranges.reduce(0) { $0 + UInt64($1.count) } }

    /// Index of the first range whose upper bound is > `value`.
    func firstIndex(endingAfter value: UInt64) -> Int {
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound > value { high = mid } else { low = mid + 1 }
        }
        return low
    }

    public func contains(_ value: UInt64) -> Bool {
        let index = firstIndex(endingAfter: value)
        return index < ranges.count && ranges[index].lowerBound <= value
    }

    /// Whether every value of `range` is in the set.
    public func contains(_ range: Range<UInt64>) -> Bool {
        guard !range.isEmpty else { return true }
        let index = firstIndex(endingAfter: range.lowerBound)
        return index < ranges.count && ranges[index].lowerBound <= range.lowerBound
            && ranges[index].upperBound >= range.upperBound
    }

    /// The set's range that holds `value`, if any.
    public func range(containing value: UInt64) -> Range<UInt64>? {
        let index = firstIndex(endingAfter: value)
        return index < ranges.count && ranges[index].lowerBound <= value ? ranges[index] : nil
    }

    /// The parts of the set within `range`, lowest first.
    public func intersection(with range: Range<UInt64>) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        var index = firstIndex(endingAfter: range.lowerBound)
        while index < ranges.count, ranges[index].lowerBound < range.upperBound {
            result.append(max(ranges[index].lowerBound, range.lowerBound)..<min(ranges[index].upperBound, range.upperBound))
            index += 1
        }
        return result
    }

    /// Whether any part of `range` is in the set.
    public func overlaps(_ range: Range<UInt64>) -> Bool {
        guard !range.isEmpty else { return false }
        let index = firstIndex(endingAfter: range.lowerBound)
        return index < ranges.count && ranges[index].lowerBound < range.upperBound
    }

    public mutating func insert(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        var lower = range.lowerBound, upper = range.upperBound
        // Ranges that touch or overlap `range` merge into it.
        var start = firstIndex(endingAfter: lower)
        if start > 0, ranges[start - 1].upperBound == lower { start -= 1 }
        var end = start
        while end < ranges.count, ranges[end].lowerBound <= upper {
            lower = min(lower, ranges[end].lowerBound)
            upper = max(upper, ranges[end].upperBound)
            end += 1
        }
        ranges.replaceSubrange(start..<end, with: [lower..<upper])
    }

    /// Removes `range`; returns how many of its values were in the set.
    @discardableResult
    public mutating func remove(_ range: Range<UInt64>) -> UInt64 {
        guard !range.isEmpty else { return 0 }
        let start = firstIndex(endingAfter: range.lowerBound)
        var end = start
        var replacement: [Range<UInt64>] = []
        var removed: UInt64 = 0
        while end < ranges.count, ranges[end].lowerBound < range.upperBound {
            let existing = ranges[end]
            if existing.lowerBound < range.lowerBound { replacement.append(existing.lowerBound..<range.lowerBound) }
            if existing.upperBound > range.upperBound { replacement.append(range.upperBound..<existing.upperBound) }
            removed += min(existing.upperBound, range.upperBound) - max(existing.lowerBound, range.lowerBound)
            end += 1
        }
        ranges.replaceSubrange(start..<end, with: replacement)
        return removed
    }

    /// The lowest free range of `length` at or after `from` and below `limit`.
    public func firstGap(length: UInt64, from: UInt64 = 0, limit: UInt64) -> UInt64? {
        var candidate = from
        var index = firstIndex(endingAfter: from)
        while true {
            let next = index < ranges.count ? ranges[index].lowerBound : limit
            if candidate <= next, next - candidate >= length, candidate <= limit, limit - candidate >= length {
                return candidate
            }
            guard index < ranges.count else { return nil }
            candidate = max(candidate, ranges[index].upperBound)
            index += 1
        }
    }
}

/// How many owners each page of the MemoryFile has (an MM's private run, a
/// SharedMemory's page): a fork makes parent and child own the same private
/// pages until one of them writes (copy-on-write), and a page is freed when
/// its last owner lets go. Kept as sorted, disjoint, coalesced runs of pages
/// with one count, so sharing a run of any size is one entry, not one per page.
struct PageReferences: Equatable, Sendable {
    struct Run: Equatable, Sendable {
        var range: Range<UInt64>
        var count: UInt64
    }

    private(set) var runs: [Run] = []

    /// Adds one owner to every page of `range` (a page with none gets its first).
    mutating func retain(_ range: Range<UInt64>) {
        // Saturates: a count that cannot grow never reaches zero either, so the
        // page leaks rather than being freed under an owner.
        update(range) { $0 == .max ? .max : $0 + 1 } freed: { _ in }
    }

    /// Drops one owner from every page of `range`; returns the ranges whose
    /// last owner this was. Pages nobody owns are left alone (a second free
    /// of the same pages frees nothing).
    mutating func release(_ range: Range<UInt64>) -> [Range<UInt64>] {
        var freed: [Range<UInt64>] = []
        update(range) { $0 == 0 ? 0 : $0 - 1 } freed: { piece in
            if let last = freed.last, last.upperBound == piece.lowerBound {
                freed[freed.count - 1] = last.lowerBound..<piece.upperBound
            } else {
                freed.append(piece)
            }
        }
        return freed
    }

    /// The parts of `range` with more than one owner, in order.
    func shared(in range: Range<UInt64>) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        var index = firstIndex(endingAfter: range.lowerBound)
        while index < runs.count, runs[index].range.lowerBound < range.upperBound {
            let run = runs[index]
            if run.count > 1 {
                let lower = max(run.range.lowerBound, range.lowerBound), upper = min(run.range.upperBound, range.upperBound)
                if let last = result.last, last.upperBound == lower {
                    result[result.count - 1] = last.lowerBound..<upper
                } else {
                    result.append(lower..<upper)
                }
            }
            index += 1
        }
        return result
    }

    /// Whether any page of `range` has more than one owner.
    func anyShared(in range: Range<UInt64>) -> Bool {
        var index = firstIndex(endingAfter: range.lowerBound)
        while index < runs.count, runs[index].range.lowerBound < range.upperBound {
            if runs[index].count > 1 { return true }
            index += 1
        }
        return false
    }

    /// How many owners the page at `offset` has.
    func count(at offset: UInt64) -> UInt64 {
        let index = firstIndex(endingAfter: offset)
        return index < runs.count && runs[index].range.lowerBound <= offset ? runs[index].count : 0
    }

    private func firstIndex(endingAfter value: UInt64) -> Int {
        var low = 0, high = runs.count
        while low < high {
            let mid = (low + high) / 2
            if runs[mid].range.upperBound > value { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// Applies `change` to the count of every page of `range` (0 where no run
    /// covers it), reports the pieces whose count fell to zero to `freed`, and
    /// coalesces the result with its neighbours. O(log n + runs touched).
    private mutating func update(_ range: Range<UInt64>, _ change: (UInt64) -> UInt64,
                                 freed: (Range<UInt64>) -> Void) {
        guard !range.isEmpty else { return }
        var first = firstIndex(endingAfter: range.lowerBound)
        var end = first
        var pieces: [Run] = []
        var cursor = range.lowerBound
        func changed(_ piece: Range<UInt64>, from count: UInt64) {
            let new = change(count)
            if count > 0 && new == 0 { freed(piece) }
            pieces.append(Run(range: piece, count: new))
        }
        while end < runs.count, runs[end].range.lowerBound < range.upperBound {
            let run = runs[end]
            if run.range.lowerBound < range.lowerBound {
                pieces.append(Run(range: run.range.lowerBound..<range.lowerBound, count: run.count))
            } else if cursor < run.range.lowerBound {
                changed(cursor..<run.range.lowerBound, from: 0)
            }
            let upper = min(run.range.upperBound, range.upperBound)
            changed(max(run.range.lowerBound, range.lowerBound)..<upper, from: run.count)
            if run.range.upperBound > range.upperBound {
                pieces.append(Run(range: range.upperBound..<run.range.upperBound, count: run.count))
            }
            cursor = upper
            end += 1
        }
        if cursor < range.upperBound { changed(cursor..<range.upperBound, from: 0) }
        if first > 0 {
            first -= 1
            pieces.insert(runs[first], at: 0)
        }
        if end < runs.count {
            pieces.append(runs[end])
            end += 1
        }
        var merged: [Run] = []
        merged.reserveCapacity(pieces.count)
        for piece in pieces where piece.count > 0 && !piece.range.isEmpty {
            if let last = merged.last, last.range.upperBound == piece.range.lowerBound, last.count == piece.count {
                merged[merged.count - 1].range = last.range.lowerBound..<piece.range.upperBound
            } else {
                merged.append(piece)
            }
        }
        runs.replaceSubrange(first..<end, with: merged)
    }
}

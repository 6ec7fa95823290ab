/// FDTable's numbers and their entries: an array for the low numbers every
/// process uses (a syscall's lookup indexes it; a dictionary hashed every
/// key), a dictionary past `denseLimit` (a dup2 to a high number must not
/// grow the array to it).
struct FDEntries {
    static let denseLimit: Int32 = 4096

    private var dense: [FDTable.Entry?] = []
    private var sparse: [Int32: FDTable.Entry] = [:]

    init() {}

    init(_ entries: [Int32: FDTable.Entry]) {
        for (fd, entry) in entries { self[fd] = entry }
    }

    subscript(fd: Int32) -> FDTable.Entry? {
        get {
            guard fd >= 0 else { return nil }
            if fd < FDEntries.denseLimit { return Int(fd) < dense.count ? dense[Int(fd)] : nil }
            return sparse[fd]
        }
        set {
            guard fd >= 0 else { return }
            guard fd < FDEntries.denseLimit else {
                sparse[fd] = newValue
                return
            }
            let index = Int(fd)
            if index >= dense.count {
                guard newValue != nil else { return }
                dense.append(contentsOf: repeatElement(nil, count: index + 1 - dense.count))
            }
            dense[index] = newValue
        }
    }

    mutating func removeValue(forKey fd: Int32) -> FDTable.Entry? {
        let old = self[fd]
        if old != nil { self[fd] = nil }
        return old
    }

    /// Every entry with its number, ascending.
    var sorted: [(fd: Int32, entry: FDTable.Entry)] {
        var result: [(fd: Int32, entry: FDTable.Entry)] = []
        for (index, entry) in dense.enumerated() {
            if let entry { result.append((Int32(index), entry)) }
        }
        for (fd, entry) in sparse.sorted(by: { $0.key < $1.key }) { result.append((fd, entry)) }
        return result
    }

    var values: [FDTable.Entry] { dense.compactMap { $0 } + Array(sparse.values) }

    /// The saved form: number to entry.
    var dictionary: [Int32: FDTable.Entry] {
        var result = sparse
        for (index, entry) in dense.enumerated() {
            if let entry { result[Int32(index)] = entry }
        }
        return result
    }
}

/// Object identity → id, for the encoder's hottest lookup (every reference
/// asks it). An open-addressing table keyed by the object's address with a
/// multiplicative hash: key and value share a cache line, and no SipHash runs.
/// Addresses stay unique because the encoder holds every object it has seen.
struct ObjectIDTable {
    private struct Entry {
        var key: UInt
        var value: UInt32
    }

    private var entries: [Entry]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        entries = Array(repeating: Entry(key: 0, value: 0), count: size)
        mask = size - 1
    }

    @inline(__always)
    private func slot(for key: UInt) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// The id recorded for `object`, or `nil`.
    @inline(__always)
    func id(for object: AnyObject) -> UInt32? {
        let key = UInt(bitPattern: ObjectIdentifier(object))
        var index = slot(for: key)
        while true {
            let entry = entries[index]
            if entry.key == key { return entry.value }
            if entry.key == 0 { return nil }
            index = (index + 1) & mask
        }
    }

    mutating func insert(_ object: AnyObject, id: UInt32) {
        if (count + 1) * 2 > entries.count { grow() }
        insert(key: UInt(bitPattern: ObjectIdentifier(object)), value: id)
        count += 1
    }

    private mutating func insert(key: UInt, value: UInt32) {
        var index = slot(for: key)
        while entries[index].key != 0 {
            index = (index + 1) & mask
        }
        entries[index] = Entry(key: key, value: value)
    }

    private mutating func grow() {
        let old = entries
        entries = Array(repeating: Entry(key: 0, value: 0), count: old.count * 2)
        mask = entries.count - 1
        for entry in old where entry.key != 0 {
            insert(key: entry.key, value: entry.value)
        }
    }
}

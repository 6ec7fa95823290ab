import Synchronization

/// A heap byte buffer whose bytes are not initialized on allocation: frame
/// buffers are overwritten right away, and zero-filling a megabyte per frame
/// would cost as much as the `none` codec itself.
///
/// `@unchecked Sendable`: a buffer has one owner at a time; it moves between
/// the thread that reads or writes the file and a worker only through
/// `OrderedWorkQueue`, whose lock orders the hand-over.
final class ByteBuffer: @unchecked Sendable {
    let capacity: Int
    let base: UnsafeMutableRawPointer
    /// How many leading bytes are meaningful.
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
    }

    deinit {
        base.deallocate()
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    func mutableSlice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }
}

/// Recycles frame buffers so that a long write does not map and fault in fresh
/// memory for every frame. Holds at most `limit` idle buffers, which bounds
/// the memory a reader or writer keeps beyond its in-flight window.
final class BufferPool: Sendable {
    private let idle = Mutex<[ByteBuffer]>([])
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// A pool sized for `window` frames in flight, each holding up to two
    /// buffers (stored and uncompressed), plus the owner's current one.
    convenience init(window: Int) {
        self.init(limit: 2 * window + 2)
    }

    func take(capacity: Int) -> ByteBuffer {
        let reused = idle.withLock { buffers -> ByteBuffer? in
            guard let index = buffers.lastIndex(where: { $0.capacity >= capacity }) else { return nil }
            return buffers.remove(at: index)
        }
        let buffer = reused ?? ByteBuffer(capacity: capacity)
        buffer.count = 0
        return buffer
    }

    /// Frees the idle buffers (a long-lived owner is done with the pool).
    func removeAll() {
        idle.withLock { $0.removeAll() }
    }

    func give(_ buffer: ByteBuffer) {
        idle.withLock { buffers in
            if buffers.count < limit { buffers.append(buffer) }
        }
    }
}

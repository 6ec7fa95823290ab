import Glibc
import State
import Testing
@testable import Sentry

/// A stream socket's receive queue read in small pieces: the bytes come in
/// order, and what is counted, peeked and saved is only what is still unread.
struct SocketQueueTests {
    private static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7) } }

    /// 1 MiB queued as one message (one write with a large SO_SNDBUF) and
    /// read 64 bytes at a time: each read takes the next 64 bytes, and the
    /// queue's counts shrink by as much (its speed is no test's business).
    @Test func smallReadsOfALargeMessageTakeItPieceByPiece() {
        let size = 1 << 20
        let message = Self.pattern(size)
        let queue = SocketQueue()
        guard case .queued(size) = queue.enqueue(SocketMessage(data: message), limit: size, stream: true) else {
            Issue.record("the message was not queued whole")
            return
        }
        var read: [UInt8] = []
        read.reserveCapacity(size)
        var piecesOfTheSize = 0, countsRight = 0
        while let piece = queue.dequeue(count: 64, stream: true, peek: false, splitCredentials: false) {
            read += piece.data
            if piece.data.count == 64 { piecesOfTheSize += 1 }
            if queue.queuedBytes == size - read.count, queue.nextMessageLength == size - read.count { countsRight += 1 }
        }
        #expect(read == message)
        #expect(piecesOfTheSize == size / 64)
        #expect(countsRight == size / 64)
    }

    /// After a partial read: FIONREAD, a peek, a merged write and a
    /// checkpoint all see the unread bytes only, in order.
    @Test func whatIsLeftOfAPartlyReadMessageIsAllThatShows() throws {
        let queue = SocketQueue()
        _ = queue.enqueue(SocketMessage(data: Self.pattern(10_000)), limit: 1 << 20, stream: true)
        #expect(queue.dequeue(count: 3000, stream: true, peek: false, splitCredentials: false)?.data
            == Array(Self.pattern(10_000)[..<3000]))
        #expect(queue.queuedBytes == 7000)
        #expect(queue.hasRoom(limit: 4 * 7000, datagram: false))
        #expect(!queue.hasRoom(limit: 4 * 7000 - 1, datagram: false))
        _ = queue.enqueue(SocketMessage(data: [1, 2, 3]), limit: 1 << 20, stream: true)
        let expected = Array(Self.pattern(10_000)[3000...]) + [1, 2, 3]
        #expect(queue.dequeue(count: 1 << 20, stream: true, peek: true, splitCredentials: false)?.data == expected)

        let bytes = try StateEncoder.encode(root: queue, registry: SentryStateTypes.registry)
        let loaded = try StateDecoder(registry: SentryStateTypes.registry).decode(bytes, as: SocketQueue.self)
        #expect(loaded.queuedBytes == expected.count)
        #expect(loaded.dequeue(count: 5000, stream: true, peek: false, splitCredentials: false)?.data
            == Array(expected[..<5000]))
        #expect(loaded.dequeue(count: 1 << 20, stream: true, peek: false, splitCredentials: false)?.data
            == Array(expected[5000...]))
        #expect(loaded.isEmpty && loaded.queuedBytes == 0)
    }
}

import Dispatch
import Testing
@testable import Sentry

/// epoll_ctl calls on one instance racing each other (Linux serialises them with ep->mtx).
@Suite struct EpollControlTests {
    /// MOD racing DEL, and two MODs racing, must leave no entry on the
    /// watched file's queue once the item is gone: such an entry would hold
    /// the item, the item its file, and the file's queue the entry, forever.
    @Test func racingControlsLeaveNoEntryBehind() throws {
        let outer = EpollFile(flags: 0), watched = EpollFile(flags: 0)
        let events = PollEvents.readable.rawValue
        DispatchQueue.concurrentPerform(iterations: 3) { worker in
            for round in 0..<20_000 {
                if worker == 0 {
                    if round % 2 == 0 {
                        try? outer.add(watched, fd: 4, events: events, data: 0)
                    } else {
                        try? outer.remove(watched, fd: 4)
                    }
                } else {
                    try? outer.modify(watched, fd: 4, events: events, data: UInt64(worker))
                }
            }
        }
        try? outer.remove(watched, fd: 4)
        #expect(watched.queue.isEmpty, "an entry outlived its item")
    }
}

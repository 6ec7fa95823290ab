import Foundation
import Glibc
import Testing
@testable import Sentry

/// One wait on several sources at once, as poll(2) makes it: a task's one
/// Waiter with entries on Sentry queues (pipes) and on host FDs (through the
/// host poller), ended by a change, the deadline or an interrupt.
@Suite struct WaitSetTests {
    static func hostNow() -> Int64 { Clocks.hostNanoseconds(CLOCK_MONOTONIC) }

    @Test func aPipeReportsWhatIsReadyOnEachEnd() throws {
        let (reader, writer) = Pipe.makePair()
        let asked: PollEvents = [.input, .output]
        #expect(reader.readiness(for: asked).isEmpty)
        #expect(writer.readiness(for: asked) == .output)
        _ = try writer.write([1], at: nil, waiter: nil)
        #expect(reader.readiness(for: asked) == .input)
        writer.retainReference()
        writer.releaseReference()
        #expect(reader.readiness(for: asked) == [.input, .hangUp], "hang-up is reported unasked")
        reader.retainReference()
        reader.releaseReference()
        #expect(writer.readiness(for: []) == .error)
    }

    @Test func aWriteToTheSecondOfTwoPipesWakesTheWait() throws {
        let first = Pipe.makePair(), second = Pipe.makePair()
        let waiter = Waiter()
        let entry = waiter.entry(for: .input)
        first.reader.eventRegister(entry)
        second.reader.eventRegister(entry)
        defer {
            first.reader.eventUnregister(entry)
            second.reader.eventUnregister(entry)
        }
        let writer = second.writer
        let thread = Thread {
            usleep(50_000)
            _ = try? writer.write([7], at: nil, waiter: nil)
        }
        thread.start()
        let started = Self.hostNow()
        #expect(try waiter.block(untilHostMonotonic: started + 5_000_000_000))
        #expect(Self.hostNow() - started < 4_000_000_000)
        #expect(second.reader.readiness(for: .input) == .input)
    }

    @Test func aHostFDBecomingReadableWakesTheWait() throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let waiter = Waiter()
        let entry = waiter.entry(for: .input)
        HostPoller.shared.register(entry, hostFD: ends[0])
        defer { HostPoller.shared.forget(ends[0]) }
        let writeEnd = ends[1]
        let thread = Thread {
            usleep(50_000)
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
        }
        thread.start()
        #expect(try waiter.block(untilHostMonotonic: Self.hostNow() + 5_000_000_000))
    }

    @Test func theDeadlineEndsAWaitAndAnInterruptThrows() throws {
        let (reader, _) = Pipe.makePair()
        let waiter = Waiter()
        let entry = waiter.entry(for: .input)
        reader.eventRegister(entry)
        defer { reader.eventUnregister(entry) }
        let started = Self.hostNow()
        #expect(try waiter.block(untilHostMonotonic: started + 30_000_000) == false)
        #expect(Self.hostNow() - started >= 30_000_000)
        waiter.interrupt()
        #expect(errnoOf { _ = try waiter.block() } == .erestartsys)
        #expect(errnoOf { _ = try waiter.block() } == .erestartsys, "an interrupt stays until cleared")
        waiter.clearInterrupt()
        waiter.notify()
        #expect(try waiter.block(untilHostMonotonic: nil), "a wake-up is kept for the next block")
    }
}

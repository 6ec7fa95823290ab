import Foundation
import Glibc
import Testing
@testable import Sentry

/// A block ends by a wake-up, an interrupt or its deadline, whether that
/// comes while it spins (`Waiter.spinLimit`) or once it sleeps.
@Suite struct WaiterTests {
    private static func now() -> Int64 { Clocks.hostNanoseconds(CLOCK_MONOTONIC) }

    /// Runs `body` on a thread of its own after `delay` ns.
    private static func after(_ delay: Int64, _ body: @escaping @Sendable () -> Void) -> Thread {
        let thread = Thread {
            usleep(UInt32(delay / 1000))
            body()
        }
        thread.start()
        return thread
    }

    @Test func aWakeUpBeforeTheBlockIsKept() throws {
        let waiter = Waiter()
        waiter.notify()
        #expect(try waiter.block(untilHostMonotonic: Self.now() + 1_000_000_000))
        #expect(try !waiter.block(untilHostMonotonic: Self.now() + 1_000_000), "a wake-up is consumed by the block it ends")
    }

    @Test(arguments: [Int64(1_000), 50_000_000])
    func aWakeUpEndsTheBlockWhileItSpinsOrSleeps(delay: Int64) throws {
        let waiter = Waiter()
        _ = Self.after(delay) { waiter.notify() }
        let start = Self.now()
        #expect(try waiter.block(untilHostMonotonic: start + 10_000_000_000))
        #expect(Self.now() - start < 5_000_000_000)
    }

    @Test(arguments: [Int64(1_000), 50_000_000])
    func anInterruptEndsTheBlockAndStays(delay: Int64) throws {
        let waiter = Waiter()
        _ = Self.after(delay) { waiter.interrupt() }
        #expect(throws: SyscallError.erestartsys) { try waiter.block(untilHostMonotonic: Self.now() + 10_000_000_000) }
        #expect(throws: SyscallError.erestartsys) { try waiter.block() }
        waiter.clearInterrupt()
        #expect(try !waiter.block(untilHostMonotonic: Self.now() + 1_000_000))
    }

    /// A deadline shorter than the spin ends the block at the deadline.
    @Test(arguments: [Int64(0), 2_000, 20_000_000])
    func theDeadlineEndsAnUnwokenBlock(timeout: Int64) throws {
        let waiter = Waiter()
        let start = Self.now()
        #expect(try !waiter.block(untilHostMonotonic: start + timeout))
        #expect(Self.now() - start >= timeout)
    }

    @Test func resetForgetsAnEarlierWakeUp() throws {
        let waiter = Waiter()
        waiter.notify()
        waiter.reset()
        #expect(try !waiter.block(untilHostMonotonic: Self.now() + 1_000_000))
    }
}

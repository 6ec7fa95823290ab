import CShim

/// What a thread leaves behind in futex words when it exits or execs
/// (futex_exit_release, futex_exec_release): the locks on its robust list get
/// FUTEX_OWNER_DIED, and the PI locks it owns go to a waiter.
extension Task {
    /// struct robust_list_head on x86_64: the list's first `next`, the
    /// offset from an entry to its futex word, and list_op_pending.
    struct RobustListHead: BitwiseCopyable {
        var next: UInt64
        var futexOffset: Int64
        var pending: UInt64
    }

    /// Bit 0 of a robust list pointer: the entry is a PI futex.
    private static let robustEntryPI: UInt64 = 1

    /// futex_cleanup's first half: walks the robust list (the PI locks
    /// are handed on by FutexTable.releasePILocks after it). While the TID
    /// is still ours (the ID in the words) and the MM this thread's.
    func releaseRobustList() {
        guard let kernel, robustList != 0 else { return }
        exitRobustList(kernel.futexes)
        robustList = 0
    }

    /// exit_robust_list: every read of the application's list fails soft
    /// (the walk stops), the walk ends after ROBUST_LIST_LIMIT entries (a
    /// circular list), and the pending entry is handled last unless it was
    /// already on the list.
    private func exitRobustList(_ futexes: FutexTable) {
        let headAddress = robustList
        guard let head = try? copyIn(RobustListHead.self, from: headAddress) else { return }
        let pending = head.pending & ~Self.robustEntryPI
        var entry = head.next & ~Self.robustEntryPI
        var pi = head.next & Self.robustEntryPI != 0
        var remaining = LinuxFutex.ROBUST_LIST_LIMIT
        while entry != headAddress {
            let next = try? copyIn(UInt64.self, from: entry)
            if entry != pending {
                guard handleFutexDeath(at: entry &+ UInt64(bitPattern: head.futexOffset), pi: pi, pending: false,
                                       futexes) else { return }
            }
            guard let next else { return }
            entry = next & ~Self.robustEntryPI
            pi = next & Self.robustEntryPI != 0
            remaining -= 1
            if remaining == 0 { break }
        }
        if pending != 0 {
            _ = handleFutexDeath(at: pending &+ UInt64(bitPattern: head.futexOffset),
                                 pi: head.pending & Self.robustEntryPI != 0, pending: true, futexes)
        }
    }

    /// handle_futex_death: a word this thread owns gets FUTEX_OWNER_DIED
    /// (FUTEX_WAITERS kept, the TID cleared) and, for a non-PI lock with
    /// waiters, one waiter is woken. A pending non-PI lock with no owner
    /// (its unlocker died before the wake) only gets the wake. False when
    /// the word cannot be read or written: the walk stops there.
    private func handleFutexDeath(at address: UInt64, pi: Bool, pending: Bool, _ futexes: FutexTable) -> Bool {
        // Linux warns about and skips a misaligned word.
        guard address % 4 == 0 else { return true }
        guard var value = try? copyIn(UInt32.self, from: address) else { return false }
        let ownID = UInt32(truncatingIfNeeded: id)
        var writable: FutexWord?
        while true {
            if pending, !pi, value & LinuxFutex.FUTEX_TID_MASK == 0 {
                if let word = try? FutexWord(self, address, shared: true) { _ = try? futexes.wake(word.key, count: 1) }
                return true
            }
            guard value & LinuxFutex.FUTEX_TID_MASK == ownID else { return true }
            if writable == nil { writable = try? FutexWord(self, address, shared: true, forWriting: true) }
            guard let word = writable else { return false }
            let died = value & LinuxFutex.FUTEX_WAITERS | LinuxFutex.FUTEX_OWNER_DIED
            let seen = cshim_atomic_cmpxchg_u32(word.pointer, value, died)
            if seen == value { break }
            value = seen // changed under us: look at it again
        }
        guard let word = writable else { return true }
        if !pi, value & LinuxFutex.FUTEX_WAITERS != 0 { _ = try? futexes.wake(word.key, count: 1) }
        return true
    }
}

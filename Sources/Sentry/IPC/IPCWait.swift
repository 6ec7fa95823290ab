import Glibc

extension Task {
    /// How semop, msgsnd and msgrcv wait: `attempt` runs, and runs again
    /// each time `queue` is notified, until it gives a result (nil: not
    /// yet). Past `hostDeadline` (host CLOCK_MONOTONIC) the wait fails with
    /// EAGAIN. A signal ends it with ERESTARTNOHAND, so a handler sees
    /// EINTR and a stop and continue has the call run again, as Linux's
    /// msgsnd and msgrcv; unless `restartable` is false (semop, which Linux
    /// never restarts): then a stop ends it with EINTR too. The checkpoint's
    /// pause has the call run again either way, keeping the rest of its
    /// timeout and which object `id` it waited on (gone by then, the call
    /// fails with EIDRM), and a stop taken before the re-entry still ends a
    /// call that is not `restartable` (`endKeptCallForStop`).
    func waitForIPC<Result>(on queue: WaitQueue, id: Int32, until hostDeadline: Int64?, restartable: Bool = true,
                            _ attempt: () throws(SyscallError) -> Result?) throws(SyscallError) -> Result {
        let entry = waiter.entry(for: [.input, .output])
        var registered = false
        defer { if registered { queue.unregister(entry) } }
        while true {
            waiter.reset()
            if let result = try attempt() { return result }
            if let hostDeadline, Clocks.hostNanoseconds(CLOCK_MONOTONIC) >= hostDeadline { throw .eagain }
            if !registered {
                queue.register(entry)
                registered = true
                continue
            }
            do {
                try waiter.block(untilHostMonotonic: hostDeadline)
            } catch {
                if mustExit { throw .eintr }
                if !restartable, isInterruptedBySignal { throw .eintr }
                if let hostDeadline { keepTimeoutForRestart(hostDeadline: hostDeadline) }
                keptForRestart.ipcObject = id
                keptForRestart.endsOnStop = !restartable
                throw .erestartnohand
            }
        }
    }

    /// The object a re-entered IPC call waited on before the pause, taken
    /// once: a lookup that fails for it is EIDRM, not EINVAL.
    func takeReenteredIPCObject() -> Int32? {
        defer { reentered.ipcObject = nil }
        return reentered.ipcObject
    }
}

import State

/// What a syscall the checkpoint's pause interrupted keeps for its re-entry,
/// so the pause is invisible to it as Linux's freezer's is (a pause is no
/// signal): kept in the task while the syscall is rewound
/// (`Task.rewoundRestart`), handed to the re-entered call, which takes
/// each part it kept, and dropped when the application runs on without
/// re-entering it. Saved with the task.
struct RestartKeep {
    /// What remained of a timed socket wait's timeout (SO_RCVTIMEO,
    /// SO_SNDTIMEO), as a deadline on the kernel's CLOCK_MONOTONIC, which a
    /// restore continues: the re-entry waits only that long.
    var timeout: Int64?
    /// How many bytes of a blocking write (a stream socket's send, a
    /// pipe's write) had gone: the re-entry writes only the rest and
    /// returns the whole count; a handler that runs first makes the call
    /// return this count, as a signal does (Linux returns what went).
    var written: Int?
    /// The futex waiters of an interrupted wait: they stay in their queues
    /// (saved with the kernel's), so a wake, a handover or a requeue
    /// meanwhile reaches them as it reaches Linux's waiter, and the
    /// re-entered call waits on in their place. Leaving them (the task runs
    /// past the call, a handler ends it, the task exits) takes them off.
    var futexWaiters: [FutexTable.Waiter] = []
    /// The SysV semaphore set or message queue an interrupted semop, msgsnd
    /// or msgrcv waited on: gone by the re-entry, the call fails with
    /// EIDRM, as the waiter the removal woke would have.
    var ipcObject: Int32?
    /// The call is one Linux never restarts (semop): a stop taken before its
    /// re-entry ends it with EINTR, as the stop would have ended Linux's.
    var endsOnStop = false
}

extension RestartKeep: SavableStruct {
    static let savedTypeName = "sentry.RestartKeep"

    func save(to sink: inout SaveSink) throws {
        try sink.save("timeout", timeout)
        try sink.save("written", written)
        try sink.save("futexWaiters", futexWaiters)
        try sink.save("ipcObject", ipcObject)
        try sink.save("endsOnStop", endsOnStop)
    }

    init(from source: inout LoadSource) throws {
        timeout = try source.load("timeout")
        written = try source.load("written")
        futexWaiters = try source.load("futexWaiters")
        // Images from before SysV semaphores and message queues kept none.
        ipcObject = try source.load("ipcObject", default: nil)
        endsOnStop = try source.load("endsOnStop", default: false)
        try ImageValidation.require((written ?? 0) >= 0, field: "written", "negative count")
    }
}

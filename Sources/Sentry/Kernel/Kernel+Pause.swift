/// Pausing the kernel for a checkpoint (DESIGN.md: "Save only at a quiescent
/// point"): every running task leaves the application or its Sentry wait,
/// rewinds an interrupted syscall so it restarts, stores its complete
/// register and FP state in the Task, and parks until `resume()`.
extension Kernel {
    /// Brings every running task to rest. Afterwards the object graph can be
    /// saved; nothing changes it until `resume()`. A task that cannot be
    /// stopped within `timeout` fails the pause, and the kernel runs on.
    public func pause(timeout: Duration = .seconds(10)) throws(KernelPauseError) {
        let (seconds, attoseconds) = timeout.components
        // Timers first: none fires into the paused kernel or while it is saved.
        timers.hold()
        do {
            try pauseGate.pause(timeoutNanoseconds: seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        } catch {
            timers.release()
            throw error
        }
    }

    /// Lets the parked tasks continue where they stopped.
    public func resume() {
        pauseGate.resume()
        timers.release()
    }

    /// Writes every process's MAP_SHARED file pages back to their files, as
    /// msync would: a checkpoint does it while paused, so the host files it
    /// records (size, modification time) already hold the container's writes
    /// and the write-back at exit finds nothing left to change.
    public func writeBackSharedMappings() {
        forEachMemoryManager { $0.syncAll() }
    }

    /// Calls `body` once with each address space a task of the kernel has
    /// (threads and vfork children share one).
    func forEachMemoryManager(_ body: (MemoryManager) -> Void) {
        var seen = Set<ObjectIdentifier>()
        for group in pidNamespace.allThreadGroups {
            for task in group.members {
                guard let mm = task.mm, seen.insert(ObjectIdentifier(mm)).inserted else { continue }
                body(mm)
            }
        }
    }

    /// Whether a pause is in effect or being brought about.
    public var isPaused: Bool { pauseGate.isRequested }
}

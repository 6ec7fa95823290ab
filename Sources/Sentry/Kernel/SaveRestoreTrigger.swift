import Synchronization

/// The save/restore test mode's syscall counter (`runsc run
/// --debug-save-restore-every N`): every N application syscalls it calls
/// whoever asked, which pauses the kernel, saves it, throws it away and
/// restores a new one from the image. Host-only, never saved; off (one
/// relaxed load per syscall) unless `arm` was called.
final class SaveRestoreTrigger: Sendable {
    /// N; 0 while the mode is off.
    private let interval = Atomic<UInt64>(0)
    private let count = Atomic<UInt64>(0)
    /// Called every `interval` syscalls. A leaf lock.
    private let onDue = Mutex<(@Sendable () -> Void)?>(nil)

    func arm(every interval: UInt64, onDue body: @escaping @Sendable () -> Void) {
        onDue.withLock { $0 = body }
        self.interval.store(interval, ordering: .releasing)
    }

    /// One application syscall was dispatched.
    func countSyscall() {
        let every = interval.load(ordering: .relaxed)
        guard every != 0 else { return }
        let counted = count.wrappingAdd(1, ordering: .relaxed).newValue
        guard counted % every == 0 else { return }
        onDue.withLock { $0 }?()
    }
}

extension Kernel {
    /// Calls `onDue` every `interval` application syscalls (the save/restore
    /// test mode); it runs on the task's thread, so it must only wake
    /// another thread, which pauses the kernel.
    public func armSaveRestoreCycles(every interval: UInt64, onDue: @escaping @Sendable () -> Void) {
        saveRestoreTrigger.arm(every: interval, onDue: onDue)
    }

    /// Ends a paused kernel without ending its processes: each task's host
    /// thread leaves its park and ends, its stub is killed, the interval
    /// timers' and the timekeeping threads end, the MemoryFile is released,
    /// and the loopback network and the unix socket namespace (abstract
    /// names, garbage collector) let their sockets go. Nothing is
    /// reported as exited: the save/restore test mode goes on with a kernel
    /// restored from this one's image. The kernel cannot run again.
    public func discard() {
        timers.stop()
        clocks.stopTimekeeping()
        pauseGate.discard()
        memoryFile.release()
        closeHostFiles()
        loopback.discard()
        unixNamespace.discard()
    }

    /// The kernel's graph has reference cycles and is never freed: the host
    /// FDs it holds (open and mapped host files, host directories) are closed
    /// here, or every cycle would leak them.
    private func closeHostFiles() {
        for group in pidNamespace.allThreadGroups {
            for task in group.members {
                for file in task.fdTable.descriptions {
                    (file as? HostFile)?.closeHostDescriptor()
                    (file as? HostStdioFile)?.closePassedDescriptor()
                }
                for vma in task.mm?.mappings ?? [] { (vma.mappedFile as? HostFile)?.closeHostDescriptor() }
            }
        }
        vfs?.detachHostFilesystems()
    }
}

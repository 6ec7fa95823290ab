import State

/// Every savable type of the kernel proper (tasks, memory, clocks) plus the
/// VFS's, for the checkpoint's StateRegistry: `SentryStateTypes.register(in: &registry)`.
public enum SentryStateTypes {
    public static var kernelTypes: [any Savable.Type] {
        [Kernel.self, Task.self, ThreadGroup.self, PIDNamespace.self, UTSNamespace.self, Credentials.self,
         Clocks.self, MemoryFile.self, MemoryManager.self, SharedMemory.self, SignalHandlers.self, SignalFile.self,
         TimerFile.self, EventFile.self, EpollFile.self, EpollItem.self, PidFile.self, FileLocks.self,
         InotifyFile.self, InotifyWatch.self, SocketFile.self, SocketQueue.self, UnixSocket.self, UnixSocketInode.self,
         InetSocket.self, InFlightFiles.self, UnixNamespace.self, FutexTable.Waiter.self, ShmRegistry.self,
         ShmSegment.self, SemaphoreRegistry.self, SemaphoreSet.self,
         MessageQueueRegistry.self, MessageQueue.self]
    }

    public static func register(in registry: inout StateRegistry) {
        for type in kernelTypes { registry.register(type) }
        VFSStateTypes.register(in: &registry)
    }

    public static var registry: StateRegistry {
        var registry = StateRegistry()
        register(in: &registry)
        return registry
    }
}

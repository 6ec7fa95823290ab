import State

/// What the three SysV IPC registries (shared memory, semaphores, message
/// queues) share: their objects' slots behind the registry's lock, found
/// and saved alike. A registry gives the access (`withSlots`); the rest
/// is here once.
protocol IPCRegistry: AnyObject {
    associatedtype Object: IPCObject
    /// Runs `body` on the slots under the registry's lock.
    func withSlots<Result>(_ body: (inout IPCSlots<Object>) -> Result) -> Result
}

extension IPCRegistry {
    func object(id: Int32) -> Object? { withSlots { $0.object(id: id) } }
    func object(slot: Int) -> Object? { withSlots { $0.object(slot: slot) } }
    var all: [Object] { withSlots { $0.live } }
    var highestSlot: Int32 { withSlots { $0.highestSlot } }

    func saveSlots(to sink: inout SaveSink) throws {
        try withSlots { $0 }.save(to: &sink)
    }

    /// The slots an image holds, for the registry to install with whatever
    /// else it loads.
    func loadedSlots(from source: inout LoadSource) throws -> IPCSlots<Object> {
        var loaded = withSlots { $0 }
        try loaded.load(from: &source)
        return loaded
    }
}

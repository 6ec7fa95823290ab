import State
import Synchronization

/// A kernel's SysV shared memory segments (its IPC namespace's). A removed
/// segment keeps its slot, unnamed, while it is attached.
final class ShmRegistry: Savable, @unchecked Sendable { // `slots` guarded by `lock`
    static let savedTypeName = "ipc.ShmRegistry"
    static let notSaved: Set<String> = ["lock"]

    let lock = Mutex<Void>(())
    var slots = IPCSlots<ShmSegment>(limit: LinuxIPC.SHMMNI)

    init() {}

    func segment(id: Int32) -> ShmSegment? { lock.withLock { _ in slots.object(id: id) } }
    func segment(slot: Int) -> ShmSegment? { lock.withLock { _ in slots.object(slot: slot) } }

    /// The segment whose file `file` is (shmdt's).
    func segment(file: AnyObject) -> ShmSegment? {
        lock.withLock { _ in slots.live.first { $0.file === file } }
    }

    var all: [ShmSegment] { lock.withLock { _ in slots.live } }
    var highestSlot: Int32 { lock.withLock { _ in slots.highestSlot } }

    /// Drops a removed segment's slot once nothing maps it.
    func forgetIfUnattached(_ segment: ShmSegment, attachments: Int) {
        guard attachments == 0 else { return }
        lock.withLock { _ in if segment.isDestroyed { slots.remove(segment) } }
    }

    func save(to sink: inout SaveSink) throws {
        let slots = lock.withLock { _ in self.slots }
        try slots.save(to: &sink)
    }

    func load(from source: inout LoadSource) throws {
        var loaded = slots
        try loaded.load(from: &source)
        lock.withLock { _ in slots = loaded }
    }

    /// Each segment in the slot its ID names (checked once the segments are loaded too).
    func afterLoad() throws {
        try lock.withLock { _ in try slots.validate() }
    }
}

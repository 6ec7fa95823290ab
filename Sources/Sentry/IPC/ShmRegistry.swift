import State
import Synchronization

/// A kernel's SysV shared memory segments (its IPC namespace's). A removed
/// segment keeps its slot, unnamed, while it is attached.
final class ShmRegistry: IPCRegistry, Savable, @unchecked Sendable { // `slots` guarded by `lock`
    static let savedTypeName = "ipc.ShmRegistry"
    static let notSaved: Set<String> = ["lock"]

    let lock = Mutex<Void>(())
    var slots = IPCSlots<ShmSegment>(limit: LinuxIPC.SHMMNI)

    init() {}

    func withSlots<Result>(_ body: (inout IPCSlots<ShmSegment>) -> Result) -> Result {
        lock.withLock { _ in body(&slots) }
    }

    /// The segment whose file `file` is (shmdt's).
    func segment(file: AnyObject) -> ShmSegment? {
        lock.withLock { _ in slots.live.first { $0.file === file } }
    }

    /// Drops a removed segment's slot once nothing maps it.
    func forgetIfUnattached(_ segment: ShmSegment, attachments: Int) {
        guard attachments == 0 else { return }
        lock.withLock { _ in if segment.isDestroyed { slots.remove(segment) } }
    }

    func save(to sink: inout SaveSink) throws {
        try saveSlots(to: &sink)
    }

    func load(from source: inout LoadSource) throws {
        let loaded = try loadedSlots(from: &source)
        withSlots { $0 = loaded }
    }

    /// Each segment in the slot its ID names (checked once the segments are loaded too).
    func afterLoad() throws {
        try lock.withLock { _ in try slots.validate() }
    }
}

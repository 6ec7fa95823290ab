import State
import Synchronization

/// A kernel's SysV shared memory segments (its IPC namespace's), by slot
/// and key. IDs are built as Linux's: the slot plus SEQ_MULTIPLIER times a
/// count of creations, so a stale ID does not name a new segment in its slot.
/// A removed segment keeps its slot, unnamed, while it is attached.
final class ShmRegistry: Savable, @unchecked Sendable { // `slots` and `sequence` guarded by `lock`
    static let savedTypeName = "ipc.ShmRegistry"
    static let notSaved: Set<String> = ["lock"]

    let lock = Mutex<Void>(())
    private var slots: [ShmSegment?] = []
    private var sequence: Int32 = 0

    init() {}

    /// The live segment `id` names (its slot and sequence).
    func segment(id: Int32) -> ShmSegment? {
        guard id >= 0 else { return nil }
        let slot = Int(id % LinuxIPC.SEQ_MULTIPLIER)
        return lock.withLock { _ in
            guard slot < slots.count, let segment = slots[slot], segment.id == id, segment.file != nil else { return nil }
            return segment
        }
    }

    /// The segment in `slot` (SHM_STAT's argument), live or removed but attached.
    func segment(slot: Int) -> ShmSegment? {
        lock.withLock { _ in slot >= 0 && slot < slots.count ? slots[slot].flatMap { $0.file != nil ? $0 : nil } : nil }
    }

    /// The named segment `key` has, if any.
    func segment(key: Int32) -> ShmSegment? {
        lock.withLock { _ in slots.first { $0?.key == key && $0?.isDestroyed == false } ?? nil }
    }

    /// The segment whose file `file` is (shmdt's).
    func segment(file: AnyObject) -> ShmSegment? {
        lock.withLock { _ in slots.first { $0?.file === file } ?? nil }
    }

    /// Every segment with its slot (IPC_INFO, SHM_INFO).
    var all: [ShmSegment] {
        lock.withLock { _ in slots.compactMap { $0.flatMap { $0.file != nil ? $0 : nil } } }
    }

    /// The highest slot in use, or 0 (what IPC_INFO and SHM_INFO return).
    var highestSlot: Int32 {
        lock.withLock { _ in Int32(slots.lastIndex { $0?.file != nil } ?? 0) }
    }

    /// Puts a segment made by `make` (given its ID) in the lowest free
    /// slot; ENOSPC past SHMMNI segments.
    func add(_ make: (Int32) throws(SyscallError) -> ShmSegment) throws(SyscallError) -> ShmSegment {
        try lock.withLock { _ throws(SyscallError) -> ShmSegment in
            let slot = slots.firstIndex { $0 == nil || $0?.file == nil } ?? slots.count
            guard slot < LinuxIPC.SHMMNI else { throw .enospc }
            let id = sequence * LinuxIPC.SEQ_MULTIPLIER + Int32(slot)
            sequence = sequence >= LinuxIPC.IPCID_SEQ_MAX ? 0 : sequence + 1
            let segment = try make(id)
            if slot == slots.count { slots.append(segment) } else { slots[slot] = segment }
            return segment
        }
    }

    /// Drops a removed segment's slot once nothing maps it.
    func forgetIfUnattached(_ segment: ShmSegment, attachments: Int) {
        guard attachments == 0 else { return }
        lock.withLock { _ in
            let slot = Int(segment.id % LinuxIPC.SEQ_MULTIPLIER)
            if segment.isDestroyed, slot < slots.count, slots[slot] === segment { slots[slot] = nil }
        }
    }

    func save(to sink: inout SaveSink) throws {
        let (slots, sequence) = lock.withLock { _ in (self.slots.map { $0?.file != nil ? $0 : nil }, self.sequence) }
        try sink.save("slots", slots)
        try sink.save("sequence", sequence)
    }

    func load(from source: inout LoadSource) throws {
        let slots: [ShmSegment?] = try source.load("slots")
        let sequence: Int32 = try source.load("sequence")
        try ImageValidation.require(slots.count <= LinuxIPC.SHMMNI && (0...LinuxIPC.IPCID_SEQ_MAX).contains(sequence),
                                    field: "slots", "\(slots.count) slots, sequence \(sequence)")
        lock.withLock { _ in
            self.slots = slots
            self.sequence = sequence
        }
    }

    /// Each segment in the slot its ID names (checked once the segments are loaded too).
    func afterLoad() throws {
        let slots = lock.withLock { _ in self.slots }
        for (slot, segment) in slots.enumerated() {
            guard let segment else { continue }
            try ImageValidation.require(Int(segment.id % LinuxIPC.SEQ_MULTIPLIER) == slot, field: "slots",
                                        "segment \(segment.id) in slot \(slot)")
        }
    }
}

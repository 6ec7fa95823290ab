import State
import Synchronization

/// One message of a SysV message queue: its type (at least 1) and text.
struct QueuedMessage: SavableStruct, Sendable, Equatable {
    static let savedTypeName = "ipc.Message"
    var type: Int64
    var text: [UInt8]

    init(type: Int64, text: [UInt8]) {
        self.type = type
        self.text = text
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("type", type)
        try sink.save("text", text)
    }

    init(from source: inout LoadSource) throws {
        type = try source.load("type")
        text = try source.load("text")
        try ImageValidation.require(type >= 1 && text.count <= LinuxMessageQueue.MSGMAX, field: "type",
                                    "a message of type \(type) and \(text.count) bytes")
    }
}

/// One SysV message queue (ipc/msg.c's msg_queue): its messages in order
/// and what IPC_STAT reports; senders wait for room and receivers for a
/// message on its queue. Guarded by its registry's lock.
final class MessageQueue: IPCObject, Savable, @unchecked Sendable {
    static let savedTypeName = "ipc.MessageQueue"
    static let notSaved: Set<String> = [
        "removed", // a removed queue is not saved: nothing names it
        "waiters", // waiters register again when their call runs again
    ]
    static let savedAs: [String: String] = [
        "sendTime": "times", "receiveTime": "times", "changeTime": "times",
        "lastSender": "pids", "lastReceiver": "pids",
    ]

    var permissions = IPCPermissions()
    var messages: [QueuedMessage] = []
    /// msg_qbytes: the most bytes of text the queue holds.
    var capacity = LinuxMessageQueue.MSGMNB
    var sendTime: Int64 = 0, receiveTime: Int64 = 0, changeTime: Int64 = 0
    var lastSender: Int32 = 0, lastReceiver: Int32 = 0
    var removed = false
    /// Notified when a message comes, room frees up, or the queue goes.
    let waiters = WaitQueue()

    init() {}

    init(permissions: IPCPermissions, now: Int64) {
        self.permissions = permissions
        changeTime = now
    }

    var isLive: Bool { !removed }
    var bytes: Int { messages.reduce(0) { $0 + $1.text.count } }

    /// Whether a message of `size` bytes fits (its bytes, and one more
    /// message, within msg_qbytes, as Linux counts both).
    func hasRoom(for size: Int) -> Bool {
        bytes + size <= capacity && messages.count + 1 <= capacity
    }

    /// find_msg: the index of the message msgrcv takes: the first (type
    /// 0), the first of `type` (or the first not of it, MSG_EXCEPT), or the
    /// first of the lowest type up to -`type`.
    func index(ofType type: Int64, except: Bool) -> Int? {
        if type == 0 { return messages.isEmpty ? nil : 0 }
        if type > 0 {
            return messages.firstIndex { except ? $0.type != type : $0.type == type }
        }
        let limit = type == .min ? Int64.max : -type
        var best: Int?
        for (index, message) in messages.enumerated() where message.type <= limit {
            if best.map({ message.type < messages[$0].type }) ?? true { best = index }
        }
        return best
    }

    /// struct msqid64_ds.
    var msqid: [UInt8] {
        var out = permissions.bytes + [UInt8](repeating: 0, count: LinuxMessageQueue.msqidSize - 48)
        out.put(sendTime, at: 48)
        out.put(receiveTime, at: 56)
        out.put(changeTime, at: 64)
        out.put(UInt64(bytes), at: 72)
        out.put(UInt64(messages.count), at: 80)
        out.put(UInt64(capacity), at: 88)
        out.put(lastSender, at: 96)
        out.put(lastReceiver, at: 100)
        return out
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("permissions", permissions)
        try sink.save("messages", messages)
        try sink.save("capacity", capacity)
        try sink.save("times", [sendTime, receiveTime, changeTime])
        try sink.save("pids", [lastSender, lastReceiver])
    }

    func load(from source: inout LoadSource) throws {
        permissions = try source.load("permissions")
        messages = try source.load("messages")
        capacity = try source.load("capacity")
        let times: [Int64] = try source.load("times")
        let pids: [Int32] = try source.load("pids")
        guard times.count == 3, pids.count == 2 else {
            throw StateError.invalidValue("\(times.count) times and \(pids.count) PIDs, expected 3 and 2", field: "times")
        }
        (sendTime, receiveTime, changeTime) = (times[0], times[1], times[2])
        (lastSender, lastReceiver) = (pids[0], pids[1])
        try ImageValidation.require((0...Int(Int32.max)).contains(capacity) && messages.count <= 1 << 20,
                                    field: "capacity", "a capacity of \(capacity) with \(messages.count) messages")
    }
}

/// A kernel's SysV message queues (its IPC namespace's).
final class MessageQueueRegistry: IPCRegistry, Savable, @unchecked Sendable { // `slots` guarded by `lock`
    static let savedTypeName = "ipc.MessageQueueRegistry"
    static let notSaved: Set<String> = ["lock"]

    let lock = Mutex<Void>(())
    var slots = IPCSlots<MessageQueue>(limit: LinuxMessageQueue.MSGMNI)

    init() {}

    func withSlots<Result>(_ body: (inout IPCSlots<MessageQueue>) -> Result) -> Result {
        lock.withLock { _ in body(&slots) }
    }

    /// IPC_RMID: the queue and its messages go; waiters fail with EIDRM.
    func remove(_ queue: MessageQueue) {
        lock.withLock { _ in
            queue.removed = true
            queue.messages = []
            slots.remove(queue)
        }
        queue.waiters.notify([.input, .output])
    }

    func save(to sink: inout SaveSink) throws {
        try saveSlots(to: &sink)
    }

    func load(from source: inout LoadSource) throws {
        let loaded = try loadedSlots(from: &source)
        withSlots { $0 = loaded }
    }

    func afterLoad() throws {
        try lock.withLock { _ in try slots.validate() }
    }
}

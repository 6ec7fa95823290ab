/// SysV message queues (ipc/msg.c): msgget, msgsnd, msgrcv, msgctl.
extension SyscallTable {
    mutating func registerMessageQueues() {
        register(68, Msg.msgget)
        register(69, Msg.msgsnd)
        register(70, Msg.msgrcv)
        register(71, Msg.msgctl)
    }
}

enum Msg {
    static func registry(_ task: Task) throws(SyscallError) -> MessageQueueRegistry {
        guard let kernel = task.kernel else { throw .einval }
        return kernel.messageQueues
    }

    /// msgget(key, flags): a key finds its queue (EEXIST under
    /// IPC_CREAT|IPC_EXCL, EACCES without the asked permissions) or, with
    /// IPC_CREAT (or IPC_PRIVATE), makes one.
    static func msgget(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let key = args.int(0), flags = args.int(1)
        let registry = try registry(task)
        let credentials = task.credentials
        let queue = try registry.lock.withLock { _ throws(SyscallError) -> MessageQueue in
            try registry.slots.get(key: key, flags: flags, credentials: credentials) { _ throws(SyscallError) in
            } make: { id throws(SyscallError) in
                MessageQueue(permissions: IPCPermissions(key: key, id: id, credentials: credentials,
                                                         mode: UInt32(bitPattern: flags)), now: IPCTime.now())
            }
        }
        return Int64(queue.permissions.id)
    }

    /// The queue `id` names, for a call that may have waited on it before a pause.
    private static func queue(_ task: Task, _ registry: MessageQueueRegistry, id: Int32) throws(SyscallError) -> MessageQueue {
        let waitedOn = task.takeReenteredIPCObject()
        guard id >= 0, let queue = registry.object(id: id) else { throw waitedOn == id && id >= 0 ? .eidrm : .einval }
        return queue
    }

    /// msgsnd(id, msgp, size, flags): the type read (EFAULT), EINVAL for a
    /// size past MSGMAX or a type below 1, the text copied (EFAULT), the queue (EINVAL),
    /// write permission (EACCES); then it goes in, or waits for room
    /// (EAGAIN under IPC_NOWAIT, EIDRM if the queue goes, EINTR for a signal).
    static func msgsnd(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let id = args.int(0), address = args.pointer(1), size = args.int64(2), flags = args.int(3)
        let type = try task.copyIn(Int64.self, from: address)
        guard size >= 0, size <= Int64(LinuxMessageQueue.MSGMAX), id >= 0, type >= 1 else { throw .einval }
        let text = size == 0 ? [] : try task.copyIn(from: address &+ 8, count: Int(size))
        let registry = try registry(task)
        let queue = try queue(task, registry, id: id)
        guard registry.lock.withLock({ _ in queue.permissions }).permits(task.credentials, requested: 0o200) else {
            throw .eacces
        }
        return try task.waitForIPC(on: queue.waiters, id: id, until: nil) { () throws(SyscallError) -> Int64? in
            let sent = try registry.lock.withLock { _ throws(SyscallError) -> Bool in
                guard !queue.removed else { throw .eidrm }
                guard queue.hasRoom(for: text.count) else {
                    if flags & LinuxMessageQueue.IPC_NOWAIT != 0 { throw .eagain }
                    return false
                }
                queue.messages.append(QueuedMessage(type: type, text: text))
                queue.lastSender = task.processID
                queue.sendTime = IPCTime.now()
                return true
            }
            guard sent else { return nil }
            queue.waiters.notify(.input)
            return 0
        }
    }

    /// msgrcv(id, msgp, size, type, flags): the message `type` selects
    /// (see MessageQueue.index), its text cut to `size` under MSG_NOERROR
    /// (E2BIG otherwise, the message left queued); MSG_COPY (with
    /// IPC_NOWAIT) copies the message at index `type` and leaves it. None
    /// there: ENOMSG under IPC_NOWAIT, else a wait as msgsnd's.
    static func msgrcv(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let id = args.int(0), address = args.pointer(1), size = args.int64(2), type = args.int64(3)
        let flags = args.int(4)
        guard size >= 0, id >= 0 else { throw .einval }
        let copying = flags & LinuxMessageQueue.MSG_COPY != 0
        if copying {
            guard flags & LinuxMessageQueue.IPC_NOWAIT != 0, flags & LinuxMessageQueue.MSG_EXCEPT == 0 else {
                throw .einval
            }
        }
        let registry = try registry(task)
        let queue = try queue(task, registry, id: id)
        guard registry.lock.withLock({ _ in queue.permissions }).permits(task.credentials, requested: 0o400) else {
            throw .eacces
        }
        let message = try task.waitForIPC(on: queue.waiters, id: id, until: nil) { () throws(SyscallError) -> QueuedMessage? in
            let taken = try registry.lock.withLock { _ throws(SyscallError) -> QueuedMessage? in
                guard !queue.removed else { throw .eidrm }
                let index = copying
                    ? (type >= 0 && type < Int64(queue.messages.count) ? Int(type) : nil)
                    : queue.index(ofType: type, except: flags & LinuxMessageQueue.MSG_EXCEPT != 0)
                guard let index else {
                    if flags & LinuxMessageQueue.IPC_NOWAIT != 0 { throw .enomsg }
                    return nil
                }
                let message = queue.messages[index]
                if message.text.count > size, flags & LinuxMessageQueue.MSG_NOERROR == 0 { throw .e2big }
                if copying { return message }
                queue.messages.remove(at: index)
                queue.lastReceiver = task.processID
                queue.receiveTime = IPCTime.now()
                return message
            }
            if taken != nil, !copying { queue.waiters.notify(.output) }
            return taken
        }
        let text = Array(message.text.prefix(Int(size)))
        try task.copyOut(value: message.type, to: address)
        try task.copyOut(text, to: address &+ 8)
        return Int64(text.count)
    }

    static func msgctl(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let id = args.int(0), command = args.int(1), buffer = args.pointer(2)
        guard id >= 0 else { throw .einval }
        let registry = try registry(task)
        let credentials = task.credentials
        switch command {
        case LinuxIPC.IPC_INFO, LinuxMessageQueue.MSG_INFO:
            let queues = registry.all
            let (messages, bytes) = registry.lock.withLock { _ in
                (queues.reduce(0) { $0 + $1.messages.count }, queues.reduce(0) { $0 + $1.bytes })
            }
            let info = command == LinuxMessageQueue.MSG_INFO
            let fields: [Int] = [info ? queues.count : LinuxMessageQueue.MSGMNI * LinuxMessageQueue.MSGMNB / 1024,
                                 info ? messages : LinuxMessageQueue.MSGMNB, LinuxMessageQueue.MSGMAX,
                                 LinuxMessageQueue.MSGMNB, LinuxMessageQueue.MSGMNI, LinuxMessageQueue.MSGSSZ,
                                 info ? bytes : LinuxMessageQueue.MSGMNB]
            var out = [UInt8](repeating: 0, count: LinuxMessageQueue.msginfoSize)
            for (index, field) in fields.enumerated() { out.put(Int32(clamping: field), at: index * 4) }
            out.put(UInt16(LinuxMessageQueue.MSGSEG), at: 28)
            try task.copyOut(out, to: buffer)
            return Int64(registry.highestSlot)
        case LinuxIPC.IPC_STAT, LinuxMessageQueue.MSG_STAT, LinuxMessageQueue.MSG_STAT_ANY:
            let queue = command == LinuxIPC.IPC_STAT ? registry.object(id: id) : registry.object(slot: Int(id))
            guard let queue else { throw .einval }
            let (permissions, bytes) = registry.lock.withLock { _ in (queue.permissions, queue.msqid) }
            if command != LinuxMessageQueue.MSG_STAT_ANY {
                guard permissions.permits(credentials, requested: 0o400) else { throw .eacces }
            }
            try task.copyOut(bytes, to: buffer)
            return command == LinuxIPC.IPC_STAT ? 0 : Int64(permissions.id)
        case LinuxIPC.IPC_SET:
            let raw = try task.copyIn(from: buffer, count: LinuxMessageQueue.msqidSize)
            guard let queue = registry.object(id: id) else { throw .einval }
            let capacity = raw.littleEndian(UInt64.self, at: 88)
            try registry.lock.withLock { _ throws(SyscallError) in
                guard queue.permissions.mayChange(credentials) else { throw .eperm }
                // msg_qbytes past MSGMNB takes CAP_SYS_RESOURCE.
                if capacity > UInt64(LinuxMessageQueue.MSGMNB),
                   !credentials.hasCapability(LinuxCapability.CAP_SYS_RESOURCE) { throw .eperm }
                guard capacity <= UInt64(Int32.max) else { throw .einval }
                queue.permissions.set(from: raw)
                queue.capacity = Int(capacity)
                queue.changeTime = IPCTime.now()
            }
            queue.waiters.notify(.output)
            return 0
        case LinuxIPC.IPC_RMID:
            guard let queue = registry.object(id: id) else { throw .einval }
            guard registry.lock.withLock({ _ in queue.permissions.mayChange(credentials) }) else { throw .eperm }
            registry.remove(queue)
            return 0
        default:
            throw .einval
        }
    }
}

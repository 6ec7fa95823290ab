import Glibc

/// The socket syscalls (net/socket.c): socket, socketpair, bind, listen,
/// connect, accept4, the send and receive families with their control
/// messages (net/core/scm.c), shutdown, names and SOL_SOCKET options. The
/// sockets are Sentry objects (Socket/): AF_UNIX, and AF_INET and AF_INET6
/// on the loopback network.
extension SyscallTable {
    mutating func registerSocket() {
        register(41, SocketSyscalls.socket)
        register(42, SocketSyscalls.connect)
        register(43, SocketSyscalls.accept)
        register(44, SocketSyscalls.sendto)
        register(45, SocketSyscalls.recvfrom)
        register(46, SocketSyscalls.sendmsg)
        register(47, SocketSyscalls.recvmsg)
        register(48, SocketSyscalls.shutdown)
        register(49, SocketSyscalls.bind)
        register(50, SocketSyscalls.listen)
        register(51, SocketSyscalls.getsockname)
        register(52, SocketSyscalls.getpeername)
        register(53, SocketSyscalls.socketpair)
        register(54, SocketSyscalls.setsockopt)
        register(55, SocketSyscalls.getsockopt)
        register(288, SocketSyscalls.accept4)
        register(299, SocketSyscalls.recvmmsg)
        register(307, SocketSyscalls.sendmmsg)
    }
}

enum SocketSyscalls {
    /// AF_MAX: families at or past it are EAFNOSUPPORT before anything else.
    static let familyLimit: Int32 = 46
    /// sizeof(struct sockaddr_storage): the longest address move_addr_to_kernel takes.
    static let addressStorageSize: Int32 = 128
    /// CAP_NET_ADMIN (SO_SNDBUFFORCE), CAP_SETUID, CAP_SETGID.
    static let capNetAdmin = 12, capSetUID = 7, capSetGID = 6

    // MARK: Creation

    static func socket(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let (type, flags) = try splitType(args.int(1))
        let socket = try make(family: args.int(0), type: type, protocol: args.int(2), flags: flags, task: task)
        return Int64(try task.fdTable.install(socket, closeOnExec: flags & LinuxFile.closeOnExec != 0,
                                              limit: task.fileDescriptorLimit))
    }

    /// socketpair(2): both ends installed, then the two numbers written; a fault closes both again.
    static func socketpair(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let family = args.int(0)
        let (type, flags) = try splitType(args.int(1))
        guard family >= 0, family < familyLimit else { throw .eafnosupport }
        guard family == SocketABI.AF_UNIX else {
            throw family == SocketABI.AF_INET || family == SocketABI.AF_INET6 ? .eopnotsupp : .eafnosupport
        }
        let unixType = try unixSocketType(type, protocol: args.int(2))
        let (first, second) = UnixSocket.makePair(type: unixType, flags: flags,
                                                  credentials: SocketCredentials(of: task),
                                                  namespace: task.unixNamespace)
        let closeOnExec = flags & LinuxFile.closeOnExec != 0
        let limit = task.fileDescriptorLimit
        let firstFD: Int32
        do {
            firstFD = try task.fdTable.install(first, closeOnExec: closeOnExec, limit: limit)
        } catch {
            first.released()
            second.released()
            throw error
        }
        let secondFD: Int32
        do {
            secondFD = try task.fdTable.install(second, closeOnExec: closeOnExec, limit: limit)
        } catch {
            try? task.fdTable.remove(firstFD)
            second.released()
            throw error
        }
        do {
            try task.copyOut(value: (firstFD, secondFD), to: args.pointer(3))
        } catch {
            try? task.fdTable.remove(firstFD)
            try? task.fdTable.remove(secondFD)
            throw error
        }
        return 0
    }

    /// The type argument's flags: anything but SOCK_NONBLOCK and SOCK_CLOEXEC above the type is EINVAL.
    private static func splitType(_ raw: Int32) throws(SyscallError) -> (Int32, UInt32) {
        let flags = raw & ~SocketABI.SOCK_TYPE_MASK
        guard flags & ~(SocketABI.SOCK_NONBLOCK | SocketABI.SOCK_CLOEXEC) == 0 else { throw .einval }
        return (raw & SocketABI.SOCK_TYPE_MASK, UInt32(bitPattern: flags))
    }

    private static func make(family: Int32, type: Int32, protocol number: Int32,
                             flags: UInt32, task: Task) throws(SyscallError) -> SocketFile {
        guard family >= 0, family < familyLimit else { throw .eafnosupport }
        switch family {
        case SocketABI.AF_UNIX:
            return UnixSocket(type: try unixSocketType(type, protocol: number), flags: flags,
                              namespace: task.unixNamespace)
        case SocketABI.AF_INET, SocketABI.AF_INET6:
            return try InetSocket.make(family: family, type: type, protocol: number, flags: flags,
                                       kernel: task.kernel)
        default:
            throw .eafnosupport
        }
    }

    /// unix_create: protocol 0 or PF_UNIX; SOCK_RAW is a datagram socket.
    private static func unixSocketType(_ type: Int32, protocol number: Int32) throws(SyscallError) -> Int32 {
        guard number == 0 || number == SocketABI.AF_UNIX else { throw .eprotonosupport }
        switch type {
        case SocketABI.SOCK_STREAM, SocketABI.SOCK_DGRAM, SocketABI.SOCK_SEQPACKET: return type
        case SocketABI.SOCK_RAW: return SocketABI.SOCK_DGRAM
        default: throw .esocktnosupport
        }
    }

    // MARK: Connections

    static func bind(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        try socket.bind(try copyInAddress(task, args.pointer(1), length: args.int(2)), task: task)
        return 0
    }

    static func listen(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try socketFile(task, args.int(0)).listen(backlog: args.int(1), task: task)
        return 0
    }

    static func connect(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let address = try copyInAddress(task, args.pointer(1), length: args.int(2))
        try socket.connect(address, task: task, waiter: socket.isNonBlocking ? nil : task.waiter)
        return 0
    }

    static func accept(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try acceptConnection(task, args, flags: 0)
    }

    static func accept4(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.int(3)
        guard flags & ~(SocketABI.SOCK_NONBLOCK | SocketABI.SOCK_CLOEXEC) == 0 else { throw .einval }
        return try acceptConnection(task, args, flags: UInt32(bitPattern: flags))
    }

    /// The peer's address is written before the descriptor exists, as
    /// Linux's: a fault there loses the connection.
    private static func acceptConnection(_ task: Task, _ args: SyscallArguments,
                                         flags: UInt32) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let accepted = try socket.accept(flags: flags, waiter: socket.isNonBlocking ? nil : task.waiter)
        return try accepted.completeOpen(waiter: nil) { file throws(SyscallError) -> Int64 in
            if args.pointer(1) != 0 {
                try copyOutAddress(task, try accepted.peerAddress(), to: args.pointer(1), lengthAt: args.pointer(2))
            }
            return Int64(try task.fdTable.install(file, closeOnExec: flags & LinuxFile.closeOnExec != 0,
                                                  limit: task.fileDescriptorLimit))
        }
    }

    static func shutdown(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        try socketFile(task, args.int(0)).shutdown(how: args.int(1))
        return 0
    }

    static func getsockname(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        try copyOutAddress(task, try socket.localAddress(), to: args.pointer(1), lengthAt: args.pointer(2))
        return 0
    }

    static func getpeername(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        try copyOutAddress(task, try socket.peerAddress(), to: args.pointer(1), lengthAt: args.pointer(2))
        return 0
    }

    // MARK: Sending

    static func sendto(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let length = Int(clamping: min(args.uint64(2), Task.maxReadWriteCount))
        var message = OutgoingMessage(data: try task.copyIn(from: args.pointer(1), count: min(length, FileSyscalls.chunk)))
        message.flags = args.uint(3)
        if args.pointer(4) != 0 {
            let address = try copyInAddress(task, args.pointer(4), length: args.int(5))
            if !address.isEmpty { message.address = address }
        }
        return try send(task, socket, message)
    }

    static func sendmsg(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        return try sendMessage(task, socket, header: args.pointer(1), flags: args.uint(2))
    }

    /// sendmmsg(2): each sent in turn, its count written to msg_len; an error after the first ends the batch.
    static func sendmmsg(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let count = min(Int(args.uint(2)), Task.maxIOVecs)
        var sent = 0
        while sent < count {
            let header = args.pointer(1) &+ UInt64(sent * SocketABI.multipleMessageHeaderSize)
            do {
                let bytes = try sendMessage(task, socket, header: header, flags: args.uint(3))
                try task.copyOut(value: UInt32(truncatingIfNeeded: bytes), to: header &+ UInt64(SocketABI.messageHeaderSize))
            } catch {
                guard sent > 0 else { throw error }
                // Part of this message went before a pause: it counts, with what went.
                let kept = task.takeKeptWritten()
                if kept > 0, (try? task.copyOut(value: UInt32(truncatingIfNeeded: kept),
                                                to: header &+ UInt64(SocketABI.messageHeaderSize))) != nil {
                    sent += 1
                }
                break
            }
            sent += 1
        }
        return Int64(sent)
    }

    /// One msghdr's send: name, the gathered iovecs, SCM_RIGHTS and SCM_CREDENTIALS.
    private static func sendMessage(_ task: Task, _ socket: SocketFile, header address: UInt64,
                                    flags: UInt32) throws(SyscallError) -> Int64 {
        let header = try MessageHeader(task, address)
        var message = OutgoingMessage(data: [])
        message.flags = flags
        if header.name != 0, header.nameLength != 0 {
            message.address = try copyInAddress(task, header.name, length: Int32(bitPattern: header.nameLength))
        }
        let vectors = try header.vectors(task)
        let control = try parseControl(task, header)
        message.rights = control.rights
        message.credentials = control.credentials
        var data: [UInt8] = []
        do throws(SyscallError) {
            for vector in vectors where data.count < FileSyscalls.chunk {
                let length = min(Int(clamping: vector.length), FileSyscalls.chunk - data.count)
                guard length > 0 else { continue }
                data += try task.copyIn(from: vector.base, count: length)
            }
        } catch {
            for file in message.rights { file.releaseReference() }
            throw error
        }
        message.data = data
        return try send(task, socket, message)
    }

    /// Sends and signals: MSG_OOB is refused, MSG_DONTWAIT or O_NONBLOCK
    /// never block, EPIPE raises SIGPIPE unless MSG_NOSIGNAL.
    private static func send(_ task: Task, _ socket: SocketFile, _ message: OutgoingMessage) throws(SyscallError) -> Int64 {
        if message.flags & SocketABI.MSG_OOB != 0 {
            for file in message.rights { file.releaseReference() }
            throw .eopnotsupp
        }
        let blocking = message.flags & SocketABI.MSG_DONTWAIT == 0 && !socket.isNonBlocking
        do {
            return Int64(try socket.send(message, task: task, waiter: blocking ? task.waiter : nil))
        } catch .epipe {
            if message.flags & SocketABI.MSG_NOSIGNAL == 0 { task.sendPipeSignal() }
            throw .epipe
        }
    }

    /// __scm_send: control messages of other levels are skipped; a bad
    /// length is EINVAL, a bad descriptor EBADF, credentials not the
    /// sender's own (without the capability) EPERM. The files come with a
    /// reference each, which the send takes over.
    private static func parseControl(_ task: Task, _ header: MessageHeader) throws(SyscallError)
        -> (rights: [FileDescription], credentials: SocketCredentials?) {
        // ___sys_sendmsg: over INT_MAX, then sock_kmalloc's optmem_max, before anything is read.
        guard header.controlLength <= UInt64(Int32.max), header.controlLength < SocketABI.sysctl_optmem_max else {
            throw .enobufs
        }
        guard header.control != 0, header.controlLength >= UInt64(SocketABI.controlHeaderSize) else { return ([], nil) }
        let bytes = try task.copyIn(from: header.control, count: Int(header.controlLength))
        var rights: [FileDescription] = []
        var credentials: SocketCredentials?
        var offset = 0
        do throws(SyscallError) {
            while bytes.count - offset >= SocketABI.controlHeaderSize {
                let (length, level, type) = bytes.withUnsafeBytes {
                    ($0.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                     $0.loadUnaligned(fromByteOffset: offset + 8, as: Int32.self),
                     $0.loadUnaligned(fromByteOffset: offset + 12, as: Int32.self))
                }
                guard length >= UInt64(SocketABI.controlHeaderSize), length <= UInt64(bytes.count - offset) else {
                    throw SyscallError.einval
                }
                let payload = Array(bytes[(offset + SocketABI.controlHeaderSize)..<(offset + Int(length))])
                if level == SocketABI.SOL_SOCKET {
                    switch type {
                    case SocketABI.SCM_RIGHTS:
                        let count = payload.count / 4
                        guard count + rights.count <= SocketABI.maximumRightsPerMessage else { throw SyscallError.einval }
                        for index in 0..<count {
                            let fd = payload.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * 4, as: Int32.self) }
                            rights.append(try task.fdTable.getRetained(fd))
                        }
                    case SocketABI.SCM_CREDENTIALS:
                        guard payload.count == SocketABI.credentialsSize,
                              let given = SocketCredentials(bytes: payload) else { throw SyscallError.einval }
                        try checkCredentials(task, given)
                        credentials = given
                    default:
                        throw SyscallError.einval
                    }
                }
                offset += SocketABI.controlAlign(Int(length))
            }
        } catch {
            for file in rights { file.releaseReference() }
            throw error
        }
        return (rights, credentials)
    }

    /// scm_check_creds: the sender's own process, and IDs it holds, unless capable.
    private static func checkCredentials(_ task: Task, _ given: SocketCredentials) throws(SyscallError) {
        let credentials = task.credentials
        guard given.processID == task.processID || credentials.hasCapability(LinuxProcess.CAP_SYS_ADMIN) else { throw .eperm }
        let uids = [credentials.realUID, credentials.effectiveUID, credentials.savedUID]
        let gids = [credentials.realGID, credentials.effectiveGID, credentials.savedGID]
        guard uids.contains(given.userID) || credentials.hasCapability(capSetUID) else { throw .eperm }
        guard gids.contains(given.groupID) || credentials.hasCapability(capSetGID) else { throw .eperm }
    }

    // MARK: Receiving

    static func recvfrom(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let flags = args.uint(3)
        let length = Int(clamping: min(args.uint64(2), Task.maxReadWriteCount))
        let received = try receive(task, socket, count: min(length, FileSyscalls.chunk), flags: flags)
        for file in received.rights { file.releaseReference() }
        try task.copyOut(received.data, to: args.pointer(1))
        if args.pointer(4) != 0 {
            try copyOutAddress(task, received.address.map(socket.senderAddress) ?? [], to: args.pointer(4),
                               lengthAt: args.pointer(5))
        }
        return Int64(flags & SocketABI.MSG_TRUNC != 0 && !socket.isStream ? received.messageLength : received.data.count)
    }

    static func recvmsg(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        return try receiveMessage(task, socket, header: args.pointer(1), flags: args.uint(2))
    }

    /// recvmmsg(2): MSG_WAITFORONE turns on MSG_DONTWAIT after the first;
    /// the timeout is looked at between messages, as Linux's.
    static func recvmmsg(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let count = min(Int(args.uint(2)), Task.maxIOVecs)
        var flags = args.uint(3)
        var deadline: Int64?
        if args.pointer(4) != 0 {
            let (seconds, nanoseconds) = try task.copyIn((Int64, Int64).self, from: args.pointer(4))
            guard seconds >= 0, nanoseconds >= 0, nanoseconds < 1_000_000_000 else { throw .einval }
            let (total, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
            let (timeout, tooLong) = total.addingReportingOverflow(nanoseconds)
            let (end, past) = Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingReportingOverflow(timeout)
            deadline = overflow || tooLong || past ? nil : end
        }
        var received = 0
        while received < count {
            let header = args.pointer(1) &+ UInt64(received * SocketABI.multipleMessageHeaderSize)
            do {
                let bytes = try receiveMessage(task, socket, header: header, flags: flags & ~SocketABI.MSG_WAITFORONE)
                try task.copyOut(value: UInt32(truncatingIfNeeded: bytes), to: header &+ UInt64(SocketABI.messageHeaderSize))
            } catch {
                if received > 0 { break }
                throw error
            }
            received += 1
            if flags & SocketABI.MSG_WAITFORONE != 0 { flags |= SocketABI.MSG_DONTWAIT }
            if let deadline, Clocks.hostNanoseconds(CLOCK_MONOTONIC) >= deadline { break }
        }
        return Int64(received)
    }

    /// One msghdr's receive: the data scattered, the sender's name, the
    /// control messages (SCM_CREDENTIALS, then SCM_RIGHTS as new
    /// descriptors; what does not fit is closed and MSG_CTRUNC set), msg_flags.
    private static func receiveMessage(_ task: Task, _ socket: SocketFile, header address: UInt64,
                                       flags: UInt32) throws(SyscallError) -> Int64 {
        let header = try MessageHeader(task, address)
        let vectors = try header.vectors(task)
        let total = min(vectors.reduce(0) { $0 + Int(clamping: $1.length) }, FileSyscalls.chunk)
        let received = try receive(task, socket, count: total, flags: flags)
        // msg_flags starts with the caller's MSG_CMSG_CLOEXEC, as ___sys_recvmsg leaves it.
        var outFlags = flags & SocketABI.MSG_CMSG_CLOEXEC
        var control: [UInt8] = []
        let rights = received.rights
        defer { for file in rights { file.releaseReference() } }
        let room = header.control == 0 ? 0 : Int(clamping: min(header.controlLength, UInt64(Int32.max)))
        let passesCredentials = socket.lock.withLock { _ in socket.options.flag(SocketABI.SO_PASSCRED) }
        if passesCredentials {
            let credentials = received.credentials ?? .none
            if room - control.count >= SocketABI.controlHeaderSize + SocketABI.credentialsSize {
                appendControl(&control, type: SocketABI.SCM_CREDENTIALS, payload: credentials.bytes, room: room)
            } else {
                outFlags |= SocketABI.MSG_CTRUNC
            }
        }
        if !socket.isStream, received.messageLength > received.data.count { outFlags |= SocketABI.MSG_TRUNC }
        var copied = 0
        for vector in vectors where copied < received.data.count {
            let length = min(Int(clamping: vector.length), received.data.count - copied)
            try task.copyOut(received.data[copied..<(copied + length)], to: vector.base)
            copied += length
        }
        if header.name != 0 {
            let name = received.address.map(socket.senderAddress) ?? []
            let length = min(Int(header.nameLength), name.count)
            try task.copyOut(name.prefix(length), to: header.name)
            try task.copyOut(value: UInt32(name.count), to: address + MessageHeader.nameLengthOffset)
        } else {
            try task.copyOut(value: UInt32(0), to: address + MessageHeader.nameLengthOffset)
        }
        // The files get descriptors last, just before the control copy-out
        // (scm_detach_fds): one that faults takes them back, leaving none
        // the caller never learns of, and truncates the control, as Linux.
        var installed: [Int32] = []
        if !rights.isEmpty {
            let fits = max(0, (room - control.count - SocketABI.controlHeaderSize) / 4)
            var numbers: [UInt8] = []
            let closeOnExec = flags & SocketABI.MSG_CMSG_CLOEXEC != 0
            while installed.count < min(fits, rights.count) {
                guard let fd = try? task.fdTable.install(rights[installed.count], closeOnExec: closeOnExec,
                                                         limit: task.fileDescriptorLimit) else { break }
                numbers += withUnsafeBytes(of: fd) { Array($0) }
                installed.append(fd)
            }
            if installed.count < rights.count { outFlags |= SocketABI.MSG_CTRUNC }
            if !installed.isEmpty {
                appendControl(&control, type: SocketABI.SCM_RIGHTS, payload: numbers, room: room)
            }
        }
        if !control.isEmpty {
            do throws(SyscallError) {
                try task.copyOut(control, to: header.control)
            } catch {
                for fd in installed { try? task.fdTable.remove(fd) }
                if !rights.isEmpty { outFlags |= SocketABI.MSG_CTRUNC }
                control = []
            }
        }
        try task.copyOut(value: UInt64(control.count), to: address + MessageHeader.controlLengthOffset)
        try task.copyOut(value: outFlags, to: address + MessageHeader.flagsOffset)
        return Int64(flags & SocketABI.MSG_TRUNC != 0 && !socket.isStream ? received.messageLength : received.data.count)
    }

    /// put_cmsg: a header and payload, padded to CMSG_SPACE unless the buffer ends first.
    private static func appendControl(_ control: inout [UInt8], type: Int32, payload: [UInt8], room: Int) {
        let length = SocketABI.controlHeaderSize + payload.count
        control += withUnsafeBytes(of: UInt64(length)) { Array($0) }
        control += withUnsafeBytes(of: SocketABI.SOL_SOCKET) { Array($0) }
        control += withUnsafeBytes(of: type) { Array($0) }
        control += payload
        let padded = min(SocketABI.controlAlign(control.count), room)
        if padded > control.count { control += [UInt8](repeating: 0, count: padded - control.count) }
    }

    /// A receive with the blocking the flags and the file ask for.
    private static func receive(_ task: Task, _ socket: SocketFile, count: Int,
                                flags: UInt32) throws(SyscallError) -> SocketQueue.Received {
        if flags & SocketABI.MSG_OOB != 0 { throw .eopnotsupp }
        let blocking = flags & SocketABI.MSG_DONTWAIT == 0 && !socket.isNonBlocking
        return try socket.receive(count: count, flags: flags, waiter: blocking ? task.waiter : nil)
    }

    // MARK: Options

    static func getsockopt(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let level = args.int(1), name = args.int(2)
        let length = try task.copyIn(Int32.self, from: args.pointer(4))
        guard length >= 0 else { throw .einval }
        let value = level == SocketABI.SOL_SOCKET ? try optionValue(socket, name)
            : try socket.protocolOption(level: level, name: name)
        let copied = min(Int(length), value.count)
        try task.copyOut(value.prefix(copied), to: args.pointer(3))
        try task.copyOut(value: Int32(copied), to: args.pointer(4))
        return 0
    }

    /// sock_getsockopt's answers, in Linux's encodings.
    private static func optionValue(_ socket: SocketFile, _ name: Int32) throws(SyscallError) -> [UInt8] {
        if let value = try socket.familyOption(name) { return value }
        let options = socket.lock.withLock { _ in socket.options }
        switch name {
        case SocketABI.SO_TYPE: return SocketFile.intBytes(socket.socketType)
        case SocketABI.SO_DOMAIN: return SocketFile.intBytes(socket.family)
        case SocketABI.SO_PROTOCOL: return SocketFile.intBytes(socket.protocolNumber)
        case SocketABI.SO_SNDBUF: return SocketFile.intBytes(Int32(clamping: options.sendBuffer))
        case SocketABI.SO_RCVBUF: return SocketFile.intBytes(Int32(clamping: options.receiveBuffer))
        case SocketABI.SO_RCVLOWAT, SocketABI.SO_SNDLOWAT: return SocketFile.intBytes(1)
        case SocketABI.SO_LINGER:
            return withUnsafeBytes(of: (options.lingerOn, options.lingerSeconds)) { Array($0) }
        case SocketABI.SO_RCVTIMEO, SocketABI.SO_SNDTIMEO:
            let timeout = name == SocketABI.SO_RCVTIMEO ? options.receiveTimeout : options.sendTimeout
            return withUnsafeBytes(of: (timeout / 1_000_000_000, timeout % 1_000_000_000 / 1000)) { Array($0) }
        case let flag where SocketOptions.remembered.contains(flag):
            return SocketFile.intBytes(options.flag(flag) ? 1 : 0)
        default:
            throw .enoprotoopt
        }
    }

    static func setsockopt(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let socket = try socketFile(task, args.int(0))
        let level = args.int(1), name = args.int(2), length = args.int(4)
        guard length >= 0 else { throw .einval }
        let value = try task.copyIn(from: args.pointer(3), count: min(Int(length), SocketABI.timevalSize))
        guard level == SocketABI.SOL_SOCKET else {
            try socket.setProtocolOption(level: level, name: name, value: value)
            return 0
        }
        func integer() throws(SyscallError) -> Int32 {
            guard value.count >= 4 else { throw .einval }
            return value.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        }
        var options = socket.lock.withLock { _ in socket.options }
        switch name {
        case SocketABI.SO_SNDBUF, SocketABI.SO_SNDBUFFORCE, SocketABI.SO_RCVBUF, SocketABI.SO_RCVBUFFORCE:
            let forced = name == SocketABI.SO_SNDBUFFORCE || name == SocketABI.SO_RCVBUFFORCE
            if forced, !task.credentials.hasCapability(capNetAdmin) { throw .eperm }
            // The value is taken as unsigned, capped by [wr]mem_max unless forced, and doubled.
            let requested = Int(UInt32(bitPattern: try integer()))
            let capped = forced ? min(requested, Int(Int32.max) / 2) : min(requested, SocketABI.maximumBufferSize)
            if name == SocketABI.SO_SNDBUF || name == SocketABI.SO_SNDBUFFORCE {
                options.sendBuffer = max(capped * 2, SocketABI.minimumSendBuffer)
            } else {
                options.receiveBuffer = max(capped * 2, SocketABI.minimumReceiveBuffer)
            }
        case SocketABI.SO_LINGER:
            guard value.count >= SocketABI.lingerSize else { throw .einval }
            let (on, seconds) = value.withUnsafeBytes {
                ($0.loadUnaligned(fromByteOffset: 0, as: Int32.self), $0.loadUnaligned(fromByteOffset: 4, as: Int32.self))
            }
            options.lingerOn = on != 0 ? 1 : 0
            options.lingerSeconds = seconds
        case SocketABI.SO_RCVTIMEO, SocketABI.SO_SNDTIMEO:
            guard value.count >= SocketABI.timevalSize else { throw .einval }
            let (seconds, microseconds) = value.withUnsafeBytes {
                ($0.loadUnaligned(fromByteOffset: 0, as: Int64.self), $0.loadUnaligned(fromByteOffset: 8, as: Int64.self))
            }
            guard microseconds >= 0, microseconds < 1_000_000 else { throw .edom }
            let (total, overflow) = max(0, seconds).multipliedReportingOverflow(by: 1_000_000_000)
            let timeout = overflow ? 0 : total.addingReportingOverflow(microseconds * 1000).partialValue
            if name == SocketABI.SO_RCVTIMEO { options.receiveTimeout = timeout } else { options.sendTimeout = timeout }
        case let flag where SocketOptions.remembered.contains(flag):
            options.flags[flag] = try integer() != 0 ? 1 : 0
        default:
            throw .enoprotoopt
        }
        socket.lock.withLock { _ in socket.options = options }
        return 0
    }

    // MARK: Helpers

    /// sockfd_lookup: EBADF, then ENOTSOCK.
    static func socketFile(_ task: Task, _ fd: Int32) throws(SyscallError) -> SocketFile {
        guard let socket = try task.fdTable.get(fd) as? SocketFile else { throw .enotsock }
        return socket
    }

    /// move_addr_to_kernel: EINVAL for a negative or too long length, none for 0.
    static func copyInAddress(_ task: Task, _ address: UInt64, length: Int32) throws(SyscallError) -> [UInt8] {
        guard length >= 0, length <= addressStorageSize else { throw .einval }
        guard length > 0 else { return [] }
        return try task.copyIn(from: address, count: Int(length))
    }

    /// move_addr_to_user: as much of `address` as the caller's length
    /// allows, then the full length (EINVAL for a negative one).
    static func copyOutAddress(_ task: Task, _ address: [UInt8], to buffer: UInt64,
                               lengthAt lengthAddress: UInt64) throws(SyscallError) {
        let length = try task.copyIn(Int32.self, from: lengthAddress)
        guard length >= 0 else { throw .einval }
        let copied = min(Int(length), address.count)
        if copied > 0 { try task.copyOut(address.prefix(copied), to: buffer) }
        try task.copyOut(value: Int32(address.count), to: lengthAddress)
    }
}

/// struct msghdr as x86_64 lays it out.
struct MessageHeader {
    static let nameLengthOffset: UInt64 = 8
    static let controlLengthOffset: UInt64 = 40
    static let flagsOffset: UInt64 = 48

    var name: UInt64
    var nameLength: UInt32
    var vectorsAddress: UInt64
    var vectorCount: UInt64
    var control: UInt64
    var controlLength: UInt64

    init(_ task: Task, _ address: UInt64) throws(SyscallError) {
        let bytes = try task.copyIn(from: address, count: SocketABI.messageHeaderSize)
        (name, nameLength, vectorsAddress, vectorCount, control, controlLength) = bytes.withUnsafeBytes {
            ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
             $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
             $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        }
    }

    /// The iovecs: EMSGSIZE past UIO_MAXIOV (copy_msghdr_from_user).
    func vectors(_ task: Task) throws(SyscallError) -> [IOVec] {
        guard vectorCount <= UInt64(Task.maxIOVecs) else { throw .emsgsize }
        return try task.copyInIOVecs(from: vectorsAddress, count: Int(vectorCount))
    }
}

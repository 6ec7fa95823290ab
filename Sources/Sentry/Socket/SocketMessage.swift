import Glibc
import Synchronization
import State

/// The sender's identity as SCM_CREDENTIALS and SO_PEERCRED carry it (struct ucred).
struct SocketCredentials: SavableStruct, Equatable, Sendable {
    static var savedTypeName: String { "socket.Credentials" }

    var processID: Int32
    var userID: UInt32
    var groupID: UInt32

    init(processID: Int32, userID: UInt32, groupID: UInt32) {
        self.processID = processID
        self.userID = userID
        self.groupID = groupID
    }

    /// What a receiver with SO_PASSCRED sees for a message sent without
    /// credentials: no PID, the overflow IDs (scm_recv of an empty scm_cookie).
    static let none = SocketCredentials(processID: 0, userID: 65534, groupID: 65534)

    /// The task's own: its process ID and effective IDs, as scm_send fills them.
    init(of task: Task) {
        self.init(processID: task.processID, userID: task.credentials.effectiveUID,
                  groupID: task.credentials.effectiveGID)
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("pid", processID)
        try sink.save("uid", userID)
        try sink.save("gid", groupID)
    }

    init(from source: inout LoadSource) throws {
        processID = try source.load("pid")
        userID = try source.load("uid")
        groupID = try source.load("gid")
    }

    /// struct ucred's bytes.
    var bytes: [UInt8] {
        withUnsafeBytes(of: (processID, userID, groupID)) { Array($0) }
    }

    init?(bytes: [UInt8]) {
        guard bytes.count >= SocketABI.credentialsSize else { return nil }
        let values = bytes.withUnsafeBytes {
            ($0.loadUnaligned(fromByteOffset: 0, as: Int32.self), $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self),
             $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        }
        self.init(processID: values.0, userID: values.1, groupID: values.2)
    }
}

/// One unit a socket queue holds (Linux's skb on a unix socket): bytes, the
/// files passed with them (SCM_RIGHTS, each holding a reference until it is
/// received or dropped), the sender's credentials, and for datagrams the
/// sender's address. Short stream writes merge into the previous message
/// unless either carries files or credentials differ, so a read never
/// crosses a passed file's boundary.
struct SocketMessage: SavableStruct, @unchecked Sendable { // the files are Sendable descriptions
    static var savedTypeName: String { "socket.Message" }

    var data: [UInt8]
    var rights: [FileDescription]
    var credentials: SocketCredentials?
    /// The sender's bound address (sun_path bytes for AF_UNIX); nil if unbound.
    var address: [UInt8]?
    /// The real user the files are charged to while in flight (InFlightFiles);
    /// nil for none, and in images from before the count.
    var rightsOwner: UInt32?
    /// The sender's kernel's count the files are charged to; nil for none
    /// (a message from an image from before each kernel had its own is
    /// charged to the kernel being loaded).
    var account: InFlightFiles?

    init(data: [UInt8], rights: [FileDescription] = [], credentials: SocketCredentials? = nil,
         address: [UInt8]? = nil, rightsOwner: UInt32? = nil, account: InFlightFiles? = nil) {
        self.data = data
        self.rights = rights
        self.credentials = credentials
        self.address = address
        self.rightsOwner = rights.isEmpty ? nil : rightsOwner
        self.account = rights.isEmpty ? nil : account
    }

    func save(to sink: inout SaveSink) throws {
        try sink.save("data", data)
        try sink.save("rights", rights)
        try sink.save("credentials", credentials)
        try sink.save("address", address)
        try sink.save("rightsOwner", rightsOwner)
        try sink.save("account", account)
    }

    init(from source: inout LoadSource) throws {
        data = try source.load("data")
        rights = try source.load("rights")
        credentials = try source.load("credentials")
        address = try source.load("address")
        rightsOwner = try source.load("rightsOwner", default: nil)
        let saved: InFlightFiles? = try source.load("account", default: nil)
        // An image from before the field: the count of the kernel being loaded.
        account = saved ?? (rightsOwner == nil ? nil : source.kernel?.inFlightFiles)
        try ImageValidation.require(rights.count <= SocketABI.maximumRightsPerMessage, field: "rights",
                                    "\(rights.count) files in one message")
        // A restored queue holds its files in flight again, in its restored kernel's count.
        account?.charge(self)
    }

    /// Drops the references the message held on its files (a message never received).
    func releaseRights() {
        account?.uncharge(self)
        DroppedRights.release(rights)
    }
}

/// Files in flight in one kernel's unix socket queues per real user
/// (user_struct's unix_inflight): charged when a message carrying them is
/// queued, uncharged when they are received or dropped. Each kernel has
/// its own (`Kernel.inFlightFiles`), so a kernel restored in the process of
/// a discarded one (the save/restore test mode) counts only its own
/// messages. The counts are not saved: each loaded message charges its
/// count again.
final class InFlightFiles: Savable, @unchecked Sendable { // `counts` guarded by its Mutex, a leaf
    static let savedTypeName = "socket.InFlightFiles"
    static let notSaved: Set<String> = ["counts"] // rebuilt by the loaded messages' charges

    private let counts = Mutex<[UInt32: Int]>([:])

    init() {}

    func save(to sink: inout SaveSink) throws {}

    func load(from source: inout LoadSource) throws {}

    /// too_many_unix_fds: ETOOMANYREFS once the sender's user has more files
    /// in flight than its RLIMIT_NOFILE, unless CAP_SYS_RESOURCE or CAP_SYS_ADMIN.
    func check(_ task: Task) throws(SyscallError) {
        let credentials = task.credentials
        let user = credentials.realUID
        guard counts.withLock({ $0[user, default: 0] }) > Int(task.fileDescriptorLimit) else { return }
        if credentials.hasCapability(Self.capSysResource) || credentials.hasCapability(Self.capSysAdmin) { return }
        throw .etoomanyrefs
    }

    func charge(_ message: SocketMessage) {
        guard let user = message.rightsOwner, !message.rights.isEmpty else { return }
        counts.withLock { $0[user, default: 0] += message.rights.count }
    }

    func uncharge(_ message: SocketMessage) {
        guard let user = message.rightsOwner, !message.rights.isEmpty else { return }
        counts.withLock { counts in
            let remaining = counts[user, default: 0] - message.rights.count
            counts[user] = remaining > 0 ? remaining : nil
        }
    }

    static let capSysAdmin = 21, capSysResource = 24
}

extension Task {
    /// The count the files this task sends are charged to: its kernel's.
    var inFlightFiles: InFlightFiles? { kernel?.inFlightFiles }
}

/// Files of messages never received, released from a work list on the
/// thread that dropped them: a socket's last release drops its queue, whose
/// files may be sockets holding more in theirs (a chain as long as an
/// application builds), and releasing them inside one another would
/// overflow the Sentry's stack. A release under way on this thread takes
/// the files found meanwhile in its list (a pthread key), in order.
enum DroppedRights {
    /// Used only by the thread whose key holds it.
    private final class WorkList {
        var files: [FileDescription] = []
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        _ = pthread_key_create(&key, nil)
        return key
    }()

    static func release(_ files: [FileDescription]) {
        guard !files.isEmpty else { return }
        if let current = pthread_getspecific(key) {
            Unmanaged<WorkList>.fromOpaque(current).takeUnretainedValue().files += files
            return
        }
        let list = WorkList()
        list.files = files
        _ = pthread_setspecific(key, Unmanaged.passUnretained(list).toOpaque())
        defer { _ = pthread_setspecific(key, nil) }
        var next = 0
        while next < list.files.count {
            let file = list.files[next]
            next += 1
            file.releaseReference()
        }
    }
}

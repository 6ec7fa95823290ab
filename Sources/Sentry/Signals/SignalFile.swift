import State

/// A signalfd (fs/signalfd.c): reading it takes pending signals of its mask,
/// each as a 128-byte signalfd_siginfo; it is readable while one is pending.
///
/// Linux reads the signals of whichever task reads; like gVisor, this file
/// reads those of the task that made it (its `target`), which is the same
/// until a process shares the file with another. The readiness changes when
/// a signal is queued: `ThreadGroup.send` wakes the group's `signalWaiters`.
public final class SignalFile: FileDescription, @unchecked Sendable { // `mask` is guarded by FileDescription.lock
    override public class var savedTypeName: String { "signal.File" }

    public private(set) var target: Task?
    /// The signals it reads (never SIGKILL or SIGSTOP).
    var mask = SignalSet.empty

    public required init() { super.init() }

    init(target: Task, mask: SignalSet, flags: UInt32) {
        self.target = target
        self.mask = SignalFile.readable(mask)
        super.init(location: nil, flags: LinuxFile.readWrite | flags)
    }

    /// SIGKILL and SIGSTOP are never read from a signalfd.
    static func readable(_ mask: SignalSet) -> SignalSet {
        SignalSet(rawValue: mask.rawValue & ~SignalSet.unblockable.rawValue)
    }

    /// signalfd on an existing signalfd: its new mask, and a wake-up for readers.
    func setMask(_ new: SignalSet) {
        lock.withLock { _ in mask = SignalFile.readable(new) }
        target?.threadGroup?.signalWaiters.notify(.readable)
    }

    private var currentMask: SignalSet { lock.withLock { _ in mask } }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("target", target)
        try sink.save("mask", currentMask)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        target = try source.load("target")
        mask = SignalFile.readable(try source.load("mask"))
    }

    override public var isSeekable: Bool { false }

    /// signalfd_read: EINVAL for less than one record; as many pending
    /// signals as fit, the first waited for unless non-blocking (EAGAIN).
    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        let size = MemoryLayout<RawSignalFDInfo>.size
        guard count >= size, let target else { throw .einval }
        var bytes: [UInt8] = []
        while bytes.count + size <= count {
            let next = bytes.isEmpty && !isNonBlocking ? try waitForSignal(target, waiter: waiter)
                : target.dequeueSignal(from: currentMask)
            guard let info = next else { break }
            withUnsafeBytes(of: SignalFile.record(info)) { bytes.append(contentsOf: $0) }
        }
        guard !bytes.isEmpty else { throw .eagain }
        return bytes
    }

    /// Takes a signal of the mask, sleeping until one is queued; an
    /// interrupt (another signal, a checkpoint) ends the wait with ERESTARTSYS.
    private func waitForSignal(_ target: Task, waiter: Waiter?) throws(SyscallError) -> SignalInfo? {
        guard let waiter, let group = target.threadGroup else { return target.dequeueSignal(from: currentMask) }
        return try waiter.wait(on: group.signalWaiters, for: .readable) { target.dequeueSignal(from: currentMask) }
    }

    override public func write(_ bytes: [UInt8], at position: Int64?, waiter: Waiter?) throws(SyscallError) -> Int {
        throw .einval
    }

    override public func seek(_ offset: Int64, whence: Int32) throws(SyscallError) -> Int64 { throw .espipe }

    /// fstat of an anonymous inode: mode 0600 without a file type, empty.
    override public func attributes() throws(SyscallError) -> FileAttributes {
        var attributes = FileAttributes()
        attributes.mode = SignalFile.anonymousInodeMode
        return attributes
    }

    /// alloc_anon_inode's i_mode (S_IRUSR | S_IWUSR).
    static let anonymousInodeMode: UInt32 = 0o600

    /// POLLIN while a signal of the mask is pending for the target.
    override public func readiness(for mask: PollEvents) -> PollEvents {
        guard let target, target.pendingSignalSet.rawValue & currentMask.rawValue != 0 else { return [] }
        return PollEvents.readable.intersection(mask)
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { target?.threadGroup?.signalWaiters.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { target?.threadGroup?.signalWaiters.unregister(entry) }

    /// signalfd_copyinfo: the siginfo's fields at signalfd_siginfo's fixed
    /// places, as its layout (siginfo_layout) says which the union holds.
    static func record(_ info: SignalInfo) -> RawSignalFDInfo {
        var record = RawSignalFDInfo()
        record.signo = UInt32(bitPattern: info.signal.rawValue)
        record.errno = info.errno
        record.code = info.code
        let first = info.fields[0], second = info.fields[1]
        let low = { (word: UInt64) in UInt32(truncatingIfNeeded: word) }
        let high = { (word: UInt64) in UInt32(truncatingIfNeeded: word >> 32) }
        switch SignalFile.layout(info) {
        case .kill:
            record.pid = low(first)
            record.uid = high(first)
        case .timer:
            record.tid = low(first)
            record.overrun = high(first)
            record.ptr = second
            record.int = Int32(bitPattern: low(second))
        case .poll:
            record.band = low(first)
            record.fd = Int32(bitPattern: low(second))
        case .fault:
            record.addr = first
        case .child:
            record.pid = low(first)
            record.uid = high(first)
            record.status = Int32(bitPattern: low(second))
            record.utime = info.fields[2]
            record.stime = info.fields[3]
        case .realtime:
            record.pid = low(first)
            record.uid = high(first)
            record.ptr = second
            record.int = Int32(bitPattern: low(second))
        case .system:
            record.callAddr = first
            record.syscall = Int32(bitPattern: low(second))
            record.arch = high(second)
        }
        return record
    }

    enum Layout { case kill, timer, poll, fault, child, realtime, system }

    /// siginfo_layout: which union member a siginfo of this signal and code uses.
    static func layout(_ info: SignalInfo) -> Layout {
        let code = info.code
        guard code > LinuxSignal.SI_USER, code < LinuxSignal.SI_KERNEL else {
            if code == LinuxSignal.SI_TIMER { return .timer }
            if code == LinuxSignal.SI_SIGIO { return .poll }
            return code < 0 ? .realtime : .kill
        }
        switch info.signal.rawValue {
        case Signal.illegalInstruction.rawValue where code <= LinuxSignal.NSIGILL,
             Signal.floatingPoint.rawValue where code <= LinuxSignal.NSIGFPE,
             Signal.segmentationFault.rawValue where code <= LinuxSignal.NSIGSEGV,
             Signal.busError.rawValue where code <= LinuxSignal.NSIGBUS,
             Signal.trap.rawValue where code <= LinuxSignal.NSIGTRAP:
            return .fault
        case Signal.child.rawValue where code <= LinuxSignal.NSIGCHLD: return .child
        case Signal.badSystemCall.rawValue where code <= LinuxSignal.NSIGSYS: return .system
        default: return code <= LinuxSignal.NSIGPOLL ? .poll : .kill
        }
    }
}

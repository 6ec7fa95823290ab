import State

/// A signalfd (fs/signalfd.c): reading it takes pending signals of its mask,
/// each as a 128-byte signalfd_siginfo; it is readable while one is pending.
///
/// As on Linux, it reads the signals of whichever task reads or polls it
/// (`Task.current`): that thread's own and its process's shared ones, not
/// those of the task that made it. Any signal queued in the kernel wakes its
/// waiters (`Kernel.signalWaiters`), who each look again at their own.
public final class SignalFile: AnonymousFile, @unchecked Sendable { // `mask` is guarded by FileDescription.lock
    override public class var savedTypeName: String { "signal.File" }
    /// Whose `signalWaiters` announce signals (in an image from before the
    /// field, the kernel being loaded: an epoll watching the file registers
    /// its item in an afterLoad that may run before this file's).
    private var kernel: Kernel?
    /// The signals it reads (never SIGKILL or SIGSTOP).
    var mask = SignalSet.empty

    public required init() { super.init() }

    init(kernel: Kernel?, mask: SignalSet, flags: UInt32) {
        self.kernel = kernel
        self.mask = SignalFile.readable(mask)
        super.init(flags: flags)
    }

    /// SIGKILL and SIGSTOP are never read from a signalfd.
    static func readable(_ mask: SignalSet) -> SignalSet {
        SignalSet(rawValue: mask.rawValue & ~SignalSet.unblockable.rawValue)
    }

    /// signalfd on an existing signalfd: its new mask, and a wake-up for readers.
    func setMask(_ new: SignalSet) {
        lock.withLock { _ in mask = SignalFile.readable(new) }
        kernel?.signalWaiters.notify(.readable)
    }

    private var currentMask: SignalSet { lock.withLock { _ in mask } }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("kernel", kernel)
        try sink.save("mask", currentMask)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        // An image from before `kernel` names the file's maker ("target"), a task of the kernel being loaded.
        source.skip("target")
        kernel = try source.load("kernel", default: nil) ?? source.kernel
        mask = SignalFile.readable(try source.load("mask"))
    }

    /// signalfd_read: EINVAL for less than one record; as many of the
    /// reader's pending signals as fit, the first waited for unless
    /// non-blocking (EAGAIN).
    override public func read(count: Int, at position: Int64?, waiter: Waiter?) throws(SyscallError) -> [UInt8] {
        guard position == nil else { throw .espipe }
        let size = MemoryLayout<RawSignalFDInfo>.size
        guard count >= size else { throw .einval }
        guard let reader = Task.current else { throw .eagain }
        var bytes: [UInt8] = []
        while bytes.count + size <= count {
            let next = bytes.isEmpty && !isNonBlocking ? try waitForSignal(reader, waiter: waiter)
                : reader.dequeueSignal(from: currentMask)
            guard let info = next else { break }
            withUnsafeBytes(of: SignalFile.record(info)) { bytes.append(contentsOf: $0) }
        }
        guard !bytes.isEmpty else { throw .eagain }
        return bytes
    }

    /// Takes a signal of the mask, sleeping until one is queued; an
    /// interrupt (another signal, a checkpoint) ends the wait with ERESTARTSYS.
    private func waitForSignal(_ reader: Task, waiter: Waiter?) throws(SyscallError) -> SignalInfo? {
        guard let waiter, let kernel else { return reader.dequeueSignal(from: currentMask) }
        return try waiter.wait(on: kernel.signalWaiters, for: .readable) { reader.dequeueSignal(from: currentMask) }
    }

    /// signalfd_poll: POLLIN while a signal of the mask is pending for the
    /// polling task (none for a thread of no task).
    override public func readiness(for mask: PollEvents) -> PollEvents {
        guard let poller = Task.current, poller.pendingSignalSet.rawValue & currentMask.rawValue != 0 else { return [] }
        return PollEvents.readable.intersection(mask)
    }

    override public var supportsPoll: Bool { true }

    override public func eventRegister(_ entry: WaitEntry) { kernel?.signalWaiters.register(entry) }

    override public func eventUnregister(_ entry: WaitEntry) { kernel?.signalWaiters.unregister(entry) }

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

import Glibc

/// poll, ppoll, select, pselect6 (fs/select.c): one loop asks every file for
/// its readiness, and if none is ready blocks the task's waiter, registered
/// on every file (host stdio through the host poller), until a change, the
/// timeout, or an interrupt. An interrupt is a
/// restart: poll keeps its deadline in the task's restart block, the others
/// write the time left back into their timeout argument, as Linux does.
extension SyscallTable {
    mutating func registerFilePoll() {
        register(7, PollSyscalls.poll)
        register(271, PollSyscalls.ppoll)
        register(23, PollSyscalls.select)
        register(270, PollSyscalls.pselect6)
    }
}

enum PollSyscalls {
    /// struct pollfd.
    struct PollFD: BitwiseCopyable {
        var fd: Int32
        var events: Int16
        var revents: Int16
    }

    /// struct timeval, select's timeout.
    struct Timeval: BitwiseCopyable {
        var seconds: Int64
        var microseconds: Int64
    }

    /// pselect6's sixth argument: the signal mask and its size.
    struct SignalMaskArgument: BitwiseCopyable {
        var mask: UInt64
        var size: UInt64
    }

    static let nanosecondsPerMillisecond: Int64 = 1_000_000
    static let nanosecondsPerMicrosecond: Int64 = 1000
    static let microsecondsPerSecond: Int64 = 1_000_000

    /// select's sets, as do_select maps them onto poll events.
    static let selectInput: PollEvents = [.readNormal, .readBand, .input, .hangUp, .error]
    static let selectOutput: PollEvents = [.writeBand, .writeNormal, .output, .error]
    static let selectException: PollEvents = [.priority]

    // MARK: poll and ppoll

    static func poll(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let timeout = args.int(2)
        let deadline = timeout < 0 ? nil
            : try Time.now(task, Time.monotonic).addingSaturating(Int64(timeout) * nanosecondsPerMillisecond)
        return try restart(task, fds: args.pointer(0), count: args.uint(1), deadline: deadline)
    }

    /// poll, and restart_syscall after an interrupted poll: the same files,
    /// the same deadline, kept in the restart block if interrupted again.
    static func restart(_ task: Task, fds: UInt64, count: UInt32, deadline: Int64?) throws(SyscallError) -> Int64 {
        do {
            return try pollFiles(task, fds: fds, count: count, deadline: deadline)
        } catch .erestartnohand {
            task.restartBlock = .poll(fds: fds, count: count, deadline: deadline)
            throw .erestartRestartblock
        }
    }

    static func ppoll(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let timeout = try Timeout(task, timespecAt: args.pointer(2))
        return try withSignalMask(task, at: args.pointer(3), size: args.uint64(4)) { () throws(SyscallError) -> Int64 in
            let outcome = Result<Int64, SyscallError> { () throws(SyscallError) -> Int64 in
                try pollFiles(task, fds: args.pointer(0), count: args.uint(1), deadline: timeout.deadline)
            }
            return try finish(task, outcome, timeout, at: args.pointer(2), asTimeval: false)
        }
    }

    /// do_sys_poll: reads the pollfds, waits, writes their revents back.
    private static func pollFiles(_ task: Task, fds address: UInt64, count: UInt32, deadline: Int64?)
        throws(SyscallError) -> Int64 {
        guard count <= UInt64(max(0, task.fileDescriptorLimit)) else { throw .einval }
        let size = Int(count) * MemoryLayout<PollFD>.stride
        let raw = count == 0 ? [] : try task.copyIn(from: address, count: size)
        var entries = raw.withUnsafeBytes { raw in
            (0..<Int(count)).map { index in
                var entry = raw.loadUnaligned(fromByteOffset: index * MemoryLayout<PollFD>.stride, as: PollFD.self)
                entry.revents = 0
                return entry
            }
        }
        let ready = try wait(task, deadline: deadline) { () -> [Interest] in
            entries.map { entry in
                guard entry.fd >= 0 else { return Interest(file: nil, events: [], isIgnored: true) }
                return Interest(file: pollableFile(task, entry.fd),
                                events: PollEvents(rawValue: UInt32(UInt16(bitPattern: entry.events))))
            }
        } report: { index, revents in
            entries[index].revents = Int16(truncatingIfNeeded: revents.rawValue)
            return true
        }
        if count > 0 { try task.copyOut(entries.withUnsafeBytes { Array($0) }, to: address) }
        return Int64(ready)
    }

    /// The file poll looks at for `fd`; nil (POLLNVAL) if closed or O_PATH,
    /// which Linux's fdget does not hand to poll either.
    private static func pollableFile(_ task: Task, _ fd: Int32) -> FileDescription? {
        guard let file = try? task.fdTable.get(fd), !file.isPathOnly else { return nil }
        return file
    }

    // MARK: select and pselect6

    static func select(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        var timeout = Timeout(deadline: nil, isZero: false)
        if args.pointer(4) != 0 {
            let value = try task.copyIn(Timeval.self, from: args.pointer(4))
            timeout = try Timeout(task, Time.Timespec(
                seconds: value.seconds.addingSaturating(value.microseconds / microsecondsPerSecond),
                nanoseconds: (value.microseconds % microsecondsPerSecond) * nanosecondsPerMicrosecond))
        }
        let outcome = Result<Int64, SyscallError> { () throws(SyscallError) -> Int64 in
            try selectFiles(task, args, deadline: timeout.deadline)
        }
        return try finish(task, outcome, timeout, at: args.pointer(4), asTimeval: true)
    }

    static func pselect6(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        var mask = SignalMaskArgument(mask: 0, size: 0)
        if args.pointer(5) != 0 { mask = try task.copyIn(SignalMaskArgument.self, from: args.pointer(5)) }
        let timeout = try Timeout(task, timespecAt: args.pointer(4))
        return try withSignalMask(task, at: mask.mask, size: mask.size) { () throws(SyscallError) -> Int64 in
            let outcome = Result<Int64, SyscallError> { () throws(SyscallError) -> Int64 in
                try selectFiles(task, args, deadline: timeout.deadline)
            }
            return try finish(task, outcome, timeout, at: args.pointer(4), asTimeval: false)
        }
    }

    /// core_sys_select: the three bitmaps of the first `n` FDs in, the ready
    /// ones out; EBADF for a set bit on a closed FD.
    private static func selectFiles(_ task: Task, _ args: SyscallArguments, deadline: Int64?) throws(SyscallError)
        -> Int64 {
        let requested = args.int(0)
        guard requested >= 0 else { throw .einval }
        let count = min(Int(requested), fileTableSize(task))
        let words = (count + 63) / 64
        let addresses = [args.pointer(1), args.pointer(2), args.pointer(3)]
        var sets = [[UInt64]]()
        for address in addresses {
            if address == 0 {
                sets.append([UInt64](repeating: 0, count: words))
                continue
            }
            let bytes = try task.copyIn(from: address, count: words * 8)
            var set = bytes.withUnsafeBytes { raw in
                (0..<words).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self) }
            }
            if count % 64 != 0, let last = set.indices.last { set[last] &= (UInt64(1) << UInt64(count % 64)) - 1 }
            sets.append(set)
        }
        var descriptors: [Int32] = []
        var interests: [PollEvents] = []
        for fd in 0..<count {
            let word = fd / 64, bit = UInt64(1) << UInt64(fd % 64)
            var events: PollEvents = []
            if sets[0][word] & bit != 0 { events.formUnion(selectInput) }
            if sets[1][word] & bit != 0 { events.formUnion(selectOutput) }
            if sets[2][word] & bit != 0 { events.formUnion(selectException) }
            guard !events.isEmpty else { continue }
            guard let number = Int32(exactly: fd), pollableFile(task, number) != nil else { throw .ebadf }
            descriptors.append(number)
            interests.append(events)
        }
        var results = [[UInt64]](repeating: [UInt64](repeating: 0, count: words), count: 3)
        var total = 0
        _ = try wait(task, deadline: deadline) { () -> [Interest] in
            zip(descriptors, interests).map { Interest(file: pollableFile(task, $0), events: $1) }
        } report: { index, revents in
            let fd = Int(descriptors[index]), word = fd / 64, bit = UInt64(1) << UInt64(fd % 64)
            var counted = false
            for (set, events) in [(0, selectInput), (1, selectOutput), (2, selectException)]
            where sets[set][word] & bit != 0 && !revents.isDisjoint(with: events) {
                results[set][word] |= bit
                total += 1
                counted = true
            }
            return counted
        }
        for (address, set) in zip(addresses, results) where address != 0 {
            try task.copyOut(set.withUnsafeBytes { Array($0) }, to: address)
        }
        return Int64(total)
    }

    /// fdt->max_fds, which select's `n` is cut to (bits above it are
    /// ignored): 64 slots, else the smallest 128 × 2^k above the highest FD.
    /// Linux's table never shrinks; ours follows the FDs open now.
    private static func fileTableSize(_ task: Task) -> Int {
        guard let highest = task.fdTable.descriptors.map(\.fd).max(), highest >= 64 else { return 64 }
        var size = 128
        while size <= Int(highest) { size <<= 1 }
        return size
    }

    // MARK: The wait they share

    /// One file and the events asked of it; a nil file is POLLNVAL, unless
    /// ignored (poll's negative FDs).
    struct Interest {
        var file: FileDescription?
        var events: PollEvents
        var isIgnored = false
    }

    /// Asks each file of `interests()` for its readiness and calls `report`
    /// for each with events (it says whether they count); if none counts,
    /// registers the task's waiter on every file and blocks until one
    /// announces a change, then asks again. Returns how many counted, 0 at
    /// the deadline (CLOCK_MONOTONIC ns). Interrupted it throws
    /// ERESTARTNOHAND (EINTR if the task exits).
    private static func wait(_ task: Task, deadline: Int64?, interests: () -> [Interest],
                             report: (Int, PollEvents) -> Bool) throws(SyscallError) -> Int {
        var registered: [(FileDescription, WaitEntry)] = []
        defer { for (file, entry) in registered { file.eventUnregister(entry) } }
        while true {
            task.waiter.reset()
            let current = interests()
            let now = try Time.now(task, Time.monotonic)
            let mayWait = deadline.map { now < $0 } ?? true
            let register = mayWait && registered.isEmpty
            var ready = 0
            for (index, interest) in current.enumerated() where !interest.isIgnored {
                guard let file = interest.file else {
                    if report(index, .invalid) { ready += 1 }
                    continue
                }
                let mask = interest.events.union(.unmaskable)
                if register && ready == 0 {
                    let entry = task.waiter.entry(for: mask)
                    file.eventRegister(entry)
                    registered.append((file, entry))
                }
                let revents = file.readiness(for: mask)
                if !revents.isEmpty, report(index, revents) { ready += 1 }
            }
            guard ready == 0, mayWait else { return ready }
            // The first pass registered: look again before blocking, so a
            // change between the look and the registration is not missed.
            if register { continue }
            let hostDeadline = deadline.map { Clocks.hostNanoseconds(CLOCK_MONOTONIC).addingSaturating($0 - now) }
            do {
                guard try task.waiter.block(untilHostMonotonic: hostDeadline) else { return 0 }
            } catch {
                throw task.mustExit ? .eintr : .erestartnohand
            }
        }
    }

    // MARK: Timeouts and masks

    /// A timeout as poll_select_set_timeout keeps it: a CLOCK_MONOTONIC
    /// deadline (nil: none), and whether it was zero (never written back).
    struct Timeout {
        var deadline: Int64?
        var isZero: Bool

        init(deadline: Int64?, isZero: Bool) {
            self.deadline = deadline
            self.isZero = isZero
        }

        /// EINVAL if `value` is not a valid time.
        init(_ task: Task, _ value: Time.Timespec) throws(SyscallError) {
            guard value.isValid else { throw .einval }
            deadline = try Time.now(task, Time.monotonic).addingSaturating(value.total)
            isZero = value.seconds == 0 && value.nanoseconds == 0
        }

        /// ppoll's and pselect6's timespec; none for a null pointer.
        init(_ task: Task, timespecAt address: UInt64) throws(SyscallError) {
            guard address != 0 else {
                self.init(deadline: nil, isZero: false)
                return
            }
            try self.init(task, try task.copyIn(Time.Timespec.self, from: address))
        }
    }

    /// Runs `body` with the signal mask at `address` in force, if there is one.
    private static func withSignalMask(_ task: Task, at address: UInt64, size: UInt64,
                                       _ body: () throws(SyscallError) -> Int64) throws(SyscallError) -> Int64 {
        guard address != 0 else { return try body() }
        guard size == LinuxSignal.sigsetSize else { throw .einval }
        let mask = try task.copyIn(UInt64.self, from: address)
        return try task.withTemporarySignalMask(SignalSet(rawValue: mask), body)
    }

    /// poll_select_finish: writes the time left into the caller's timeout
    /// (not for a zero timeout); a call that cannot write it cannot restart,
    /// so an interrupt becomes EINTR.
    private static func finish(_ task: Task, _ outcome: Result<Int64, SyscallError>, _ timeout: Timeout,
                               at address: UInt64, asTimeval: Bool) throws(SyscallError) -> Int64 {
        guard address != 0, let deadline = timeout.deadline, !timeout.isZero else { return try outcome.get() }
        do {
            let left = Time.Timespec(max(0, deadline - (try Time.now(task, Time.monotonic))))
            if asTimeval {
                try task.copyOut(value: Timeval(seconds: left.seconds,
                                                microseconds: left.nanoseconds / nanosecondsPerMicrosecond), to: address)
            } else {
                try task.copyOut(value: left, to: address)
            }
        } catch {
            if case .failure(.erestartnohand) = outcome { throw .eintr }
        }
        return try outcome.get()
    }
}

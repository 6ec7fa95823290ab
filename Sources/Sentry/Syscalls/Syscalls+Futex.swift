import CShim
import Glibc
import State
import Synchronization

/// futex(2) (kernel/futex/): wait queues keyed by the futex word, the
/// operations glibc's pthreads use (WAIT, WAKE, their BITSET forms,
/// REQUEUE, CMP_REQUEUE, WAKE_OP, and LOCK_PI, LOCK_PI2, TRYLOCK_PI,
/// UNLOCK_PI for its PI mutexes, WAIT_REQUEUE_PI and CMP_REQUEUE_PI for
/// condition variables over them) and timeouts on either clock; and
/// futex_waitv, a wait on up to 128 words at once.
///
/// A private futex (FUTEX_PRIVATE_FLAG, or a word in a private mapping) is
/// keyed on (MM, address, whether the call had the flag); a shared one in a
/// MAP_SHARED mapping on its place in the MemoryFile, so processes sharing
/// the mapping meet.
/// A checkpoint's pause interrupts every wait, whose call restarts after
/// it, but the waiter keeps its place in its queue (saved with the kernel):
/// a wake, an unlock's handover or a requeue that comes before the call is
/// re-entered reaches it there, as it reaches Linux's waiter that was
/// never interrupted, and the re-entered call waits on in that place until
/// the deadline it had. A WAIT_REQUEUE_PI waiter already requeued onto its
/// PI futex goes on waiting for that through restart_syscall.
extension SyscallTable {
    mutating func registerFutex() {
        register(202, Futex.futex)
        register(449, Futex.waitv)
    }
}

enum Futex {
    static func futex(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), operation = args.uint(1)
        let shared = operation & LinuxFutex.FUTEX_PRIVATE_FLAG == 0
        let command = operation & ~(LinuxFutex.FUTEX_PRIVATE_FLAG | LinuxFutex.FUTEX_CLOCK_REALTIME)
        let realtime = operation & LinuxFutex.FUTEX_CLOCK_REALTIME != 0
        let clock = realtime ? Time.realtime : Time.monotonic
        let waits = switch command {
        case LinuxFutex.FUTEX_WAIT, LinuxFutex.FUTEX_WAIT_BITSET, LinuxFutex.FUTEX_LOCK_PI, LinuxFutex.FUTEX_LOCK_PI2,
             LinuxFutex.FUTEX_WAIT_REQUEUE_PI: true
        default: false
        }
        var deadline: Int64? = nil
        if waits, args.pointer(3) != 0 {
            let timeout = try task.copyIn(Time.Timespec.self, from: args.pointer(3))
            guard timeout.isValid else { throw .einval }
            // FUTEX_WAIT's timeout is relative; FUTEX_WAIT_BITSET's is absolute.
            deadline = command == LinuxFutex.FUTEX_WAIT
                ? (try Time.now(task, clock)).addingSaturating(timeout.total) : timeout.total
        }
        if realtime, command != LinuxFutex.FUTEX_WAIT_BITSET, command != LinuxFutex.FUTEX_LOCK_PI2,
           command != LinuxFutex.FUTEX_WAIT_REQUEUE_PI { throw .enosys }
        guard let kernel = task.kernel else { throw .einval }
        let table = kernel.futexes
        switch command {
        case LinuxFutex.FUTEX_LOCK_PI, LinuxFutex.FUTEX_LOCK_PI2, LinuxFutex.FUTEX_TRYLOCK_PI:
            // LOCK_PI's absolute deadline is always on CLOCK_REALTIME;
            // LOCK_PI2's on the clock the flag names.
            let lockClock = command == LinuxFutex.FUTEX_LOCK_PI ? Time.realtime : clock
            try table.lockPI(task, address, shared: shared, trying: command == LinuxFutex.FUTEX_TRYLOCK_PI,
                             clock: lockClock, deadline: deadline)
            return 0
        case LinuxFutex.FUTEX_UNLOCK_PI:
            try table.unlockPI(task, address, shared: shared)
            return 0
        case LinuxFutex.FUTEX_WAIT, LinuxFutex.FUTEX_WAIT_BITSET:
            let bitset = command == LinuxFutex.FUTEX_WAIT ? LinuxFutex.FUTEX_BITSET_MATCH_ANY : args.uint(5)
            guard bitset != 0 else { throw .einval }
            let word = try FutexWord(task, address, shared: shared)
            try table.wait(task, on: word, expecting: args.uint(2), bitset: bitset, clock: clock, deadline: deadline)
            return 0
        case LinuxFutex.FUTEX_WAKE, LinuxFutex.FUTEX_WAKE_BITSET:
            let bitset = command == LinuxFutex.FUTEX_WAKE ? LinuxFutex.FUTEX_BITSET_MATCH_ANY : args.uint(5)
            guard bitset != 0 else { throw .einval }
            let word = try FutexWord(task, address, shared: shared)
            return Int64(try table.wake(word.key, count: wakeCount(args.uint(2)), bitset: bitset))
        case LinuxFutex.FUTEX_REQUEUE, LinuxFutex.FUTEX_CMP_REQUEUE:
            // val2 (the requeue limit) travels in the timeout argument.
            guard let wakes = Int32(exactly: args.uint(2)), let moves = Int32(exactly: UInt32(truncatingIfNeeded: args.pointer(3))),
                  wakes >= 0, moves >= 0 else { throw .einval }
            let word = try FutexWord(task, address, shared: shared)
            let target = try FutexWord(task, args.pointer(4), shared: shared)
            let expected: UInt32? = command == LinuxFutex.FUTEX_CMP_REQUEUE ? args.uint(5) : nil
            return Int64(try table.requeue(from: word, to: target.key, wake: Int(wakes), move: Int(moves), expecting: expected))
        case LinuxFutex.FUTEX_WAIT_REQUEUE_PI:
            // futex_wait_requeue_pi: distinct words, the PI one (uaddr2) writable, looked up first.
            let targetAddress = args.pointer(4)
            guard address != targetAddress else { throw .einval }
            let target = try FutexWord.key(task, targetAddress, shared: shared)
            let word = try FutexWord(task, address, shared: shared)
            guard word.key != target else { throw .einval }
            try table.waitRequeuePI(task, on: word, expecting: args.uint(2), target: target, at: targetAddress,
                                    shared: shared, clock: clock, deadline: deadline)
            return 0
        case LinuxFutex.FUTEX_CMP_REQUEUE_PI:
            // futex_requeue with requeue_pi: val2 (the requeue limit) in the timeout argument;
            // distinct words, and exactly one to wake (the one that gets the PI futex if it is free).
            guard let wakes = Int32(exactly: args.uint(2)), let moves = Int32(exactly: UInt32(truncatingIfNeeded: args.pointer(3))),
                  wakes >= 0, moves >= 0 else { throw .einval }
            guard address != args.pointer(4), wakes == 1 else { throw .einval }
            let word = try FutexWord(task, address, shared: shared)
            let target = try FutexWord(task, args.pointer(4), shared: shared, forWriting: true)
            guard word.key != target.key else { throw .einval }
            return Int64(try table.requeuePI(task, from: word, to: target, move: Int(moves), expecting: args.uint(5)))
        case LinuxFutex.FUTEX_WAKE_OP:
            let word = try FutexWord(task, address, shared: shared)
            let target = try FutexWord(task, args.pointer(4), shared: shared, forWriting: true)
            let moves = Int32(truncatingIfNeeded: UInt32(truncatingIfNeeded: args.pointer(3)))
            return Int64(try table.wakeOp(word.key, target, wake: wakeCount(args.uint(2)),
                                          wakeTarget: max(0, Int(moves)), encoded: args.uint(5)))
        default:
            throw .enosys
        }
    }

    /// struct futex_waitv.
    struct WaitvEntry: BitwiseCopyable {
        var value: UInt64
        var address: UInt64
        var flags: UInt32
        var reserved: UInt32
    }

    /// futex_waitv(waiters, count, flags, timeout, clockid): sleeps until
    /// any of the words is woken and returns its index; EAGAIN if one of
    /// them does not hold its value. The timeout is absolute on the clock
    /// given (CLOCK_MONOTONIC or CLOCK_REALTIME); only 32-bit words exist.
    static func waitv(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let address = args.pointer(0), count = args.uint(1)
        guard args.uint(2) == 0 else { throw .einval }
        guard count != 0, count <= LinuxFutex.FUTEX_WAITV_MAX, address != 0 else { throw .einval }
        var clock = Time.monotonic
        var deadline: Int64?
        if args.pointer(3) != 0 {
            clock = args.int(4)
            guard clock == Time.realtime || clock == Time.monotonic else { throw .einval }
            let timeout = try task.copyIn(Time.Timespec.self, from: args.pointer(3))
            guard timeout.isValid else { throw .einval }
            deadline = timeout.total
        }
        var entries: [(address: UInt64, value: UInt32, shared: Bool)] = []
        let size = UInt64(MemoryLayout<WaitvEntry>.size)
        for index in 0..<UInt64(count) {
            let (offset, overflow) = address.addingReportingOverflow(index * size)
            guard !overflow else { throw .efault }
            let entry = try task.copyIn(WaitvEntry.self, from: offset)
            guard entry.flags & ~LinuxFutex.FUTEX2_VALID_MASK == 0, entry.reserved == 0,
                  entry.flags & LinuxFutex.FUTEX2_SIZE_MASK == LinuxFutex.FUTEX2_SIZE_U32,
                  let value = UInt32(exactly: entry.value) else { throw .einval }
            entries.append((entry.address, value, entry.flags & LinuxFutex.FUTEX2_PRIVATE == 0))
        }
        var words: [(FutexWord, UInt32)] = []
        for entry in entries {
            words.append((try FutexWord(task, entry.address, shared: entry.shared), entry.value))
        }
        guard let kernel = task.kernel else { throw .einval }
        return Int64(try kernel.futexes.waitv(task, on: words, clock: clock, deadline: deadline))
    }

    /// restart_syscall for a WAIT_REQUEUE_PI interrupted (by a checkpoint)
    /// once requeued: the wait for the PI futex goes on.
    static func restartLockPI(_ task: Task, address: UInt64, shared: Bool, clock: Int32,
                              deadline: Int64?) throws(SyscallError) -> Int64 {
        guard let kernel = task.kernel else { throw .einval }
        try kernel.futexes.lockAfterRequeue(task, address, shared: shared, clock: clock, deadline: deadline)
        return 0
    }

    /// FUTEX_WAKE's count is an int: zero or less still wakes nobody.
    private static func wakeCount(_ value: UInt32) -> Int {
        max(0, Int(Int32(truncatingIfNeeded: value)))
    }
}

/// A futex word: its wait-queue key and the Sentry's pointer to it.
struct FutexWord {
    enum Key: Hashable {
        /// A futex in private memory: the MM and the address, and whether
        /// the call was a shared one (no FUTEX_PRIVATE_FLAG): Linux keys
        /// those apart (FUT_OFF_MMSHARED), so a shared and a private call on
        /// one private word do not meet.
        case process(Space, UInt64, shared: Bool)
        /// A shared one in a MAP_SHARED mapping: its offset in the
        /// MemoryFile, which a restore keeps (one per page of the file).
        case memory(UInt64)
    }

    /// An MM in a key, compared by identity; held, so a saved waiter's key names it.
    struct Space: Hashable {
        let mm: MemoryManager

        static func == (lhs: Space, rhs: Space) -> Bool { lhs.mm === rhs.mm }
        func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(mm)) }
    }
    let key: Key
    let pointer: UnsafeMutablePointer<UInt32>

    /// EINVAL for a misaligned word, EFAULT for one not mapped (readable,
    /// or writable when `forWriting`), as get_futex_key.
    init(_ task: Task, _ address: UInt64, shared: Bool, forWriting: Bool = false) throws(SyscallError) {
        guard address % 4 == 0 else { throw .einval }
        let mm = try task.memory()
        var found: UnsafeMutableRawPointer?
        try mm.withMemory(at: address, count: 4, access: forWriting ? [.read, .write] : .read) { piece in
            found = piece.baseAddress
        }
        guard let found else { throw .efault }
        pointer = found.assumingMemoryBound(to: UInt32.self)
        if shared && mm.isSharedMapping(at: address) {
            guard let offset = mm.memoryFile?.offset(ofMapped: found) else { throw .efault }
            key = .memory(offset)
        } else {
            key = .process(Space(mm: mm), address, shared: shared)
        }
    }
}

extension FutexWord {
    /// The key of a word not read yet (WAIT_REQUEUE_PI's PI futex), as
    /// get_futex_key makes it: a private one needs no page, only an aligned
    /// user address (EINVAL, EFAULT); a shared one must be mapped writable.
    static func key(_ task: Task, _ address: UInt64, shared: Bool) throws(SyscallError) -> Key {
        guard address % 4 == 0 else { throw .einval }
        guard shared else {
            guard address < MemoryManager.maxAddress else { throw .efault }
            return .process(Space(mm: try task.memory()), address, shared: false)
        }
        return try FutexWord(task, address, shared: true, forWriting: true).key
    }
}

extension FutexWord.Key: SavableValue {
    static let stateKind = StateKind.enumeration("sentry.FutexKey")

    func saveState(to writer: inout StateWriter) throws {
        switch self {
        case .process(let space, let address, let shared): try writer.writeEnumCase("process", space.mm, address, shared)
        case .memory(let offset): try writer.writeEnumCase("memory", offset)
        }
    }

    static func decodeState(_ state: StateValue, context: LoadContext) throws -> FutexWord.Key {
        switch state {
        case .enumCase("process", let payload) where payload.count == 3:
            let address: UInt64 = try context.value(payload[1])
            guard address % 4 == 0, address < MemoryManager.maxAddress else {
                throw StateError.invalidValue("futex key at \(address)")
            }
            return .process(FutexWord.Space(mm: try context.value(payload[0])), address, shared: try context.value(payload[2]))
        case .enumCase("memory", let payload) where payload.count == 1:
            let offset: UInt64 = try context.value(payload[0])
            guard offset % 4 == 0 else { throw StateError.invalidValue("futex key at offset \(offset)") }
            return .memory(offset)
        default:
            throw StateError.invalidValue("bad futex key \(state)")
        }
    }
}

extension MemoryManager {
    /// Whether `address` lies in a MAP_SHARED mapping (a shared futex's key).
    func isSharedMapping(at address: UInt64) -> Bool {
        lock.withLock { _ in vmaIndexLocked(containing: address).map { vmas[$0].shared } ?? false }
    }
}

/// The kernel's futex wait queues; saved by the kernel as the waiters in
/// them, which at a checkpoint are those the pause kept (see Futex).
/// `@unchecked Sendable`: the queues and each waiter's state but its task
/// are guarded by `lock`, a leaf but for the MM lock FutexWord takes before it.
final class FutexTable: @unchecked Sendable {
    /// One wait's place in a queue. Saved: a wait the checkpoint's pause
    /// interrupts keeps its place (`Task.keptForRestart`) through the save
    /// and restore, so a wake, an unlock's handover or a requeue that comes
    /// before the call is re-entered reaches it, as it reaches Linux's
    /// waiter; the re-entered call takes it up (`reentered`).
    final class Waiter: Savable, @unchecked Sendable {
        static let savedTypeName = "sentry.FutexWaiter"
        static let notSaved: Set<String> = []

        private(set) var task: Task?
        var key = FutexWord.Key.memory(0)
        private(set) var bitset = LinuxFutex.FUTEX_BITSET_MATCH_ANY
        /// Set by a wake, under the lock: the waiter returns 0 even if it
        /// was interrupted or timed out at the same moment (waking is not
        /// interrupting).
        var woken = false
        /// A FUTEX_LOCK_PI waiter (or a WAIT_REQUEUE_PI one once requeued):
        /// the TID of the owner it waits for; `handedOver` when an unlock
        /// (or CMP_REQUEUE_PI) wrote its TID in the word, else a wake means
        /// that owner died.
        var piOwner: UInt32?
        var handedOver = false
        /// A FUTEX_WAIT_REQUEUE_PI waiter: the PI futex it may be requeued
        /// to (Linux's requeue_pi_key). Only CMP_REQUEUE_PI moves or wakes
        /// one, as only it wakes a LOCK_PI waiter: other wakes and requeues
        /// that meet either are EINVAL.
        var requeueTarget: FutexWord.Key?
        /// The wait's deadline on its call's clock, set when the pause keeps
        /// it: the re-entered call waits until then (FUTEX_WAIT's relative
        /// timeout does not start over, as Linux's futex_wait_restart).
        var deadline: Int64?

        /// Whether only the PI operations may touch this waiter.
        var isPI: Bool { piOwner != nil || requeueTarget != nil }

        /// The waiting task's TID, as the PI words hold it.
        var tid: UInt32 { UInt32(truncatingIfNeeded: task?.id ?? 0) }

        init() {}

        init(task: Task, key: FutexWord.Key, bitset: UInt32, piOwner: UInt32? = nil) {
            self.task = task
            self.key = key
            self.bitset = bitset
            self.piOwner = piOwner
        }

        func save(to sink: inout SaveSink) throws {
            try sink.save("task", task)
            try sink.save("key", key)
            try sink.save("bitset", bitset)
            try sink.save("woken", woken)
            try sink.save("piOwner", piOwner)
            try sink.save("handedOver", handedOver)
            try sink.save("requeueTarget", requeueTarget)
            try sink.save("deadline", deadline)
        }

        func load(from source: inout LoadSource) throws {
            task = try source.load("task")
            key = try source.load("key")
            bitset = try source.load("bitset")
            woken = try source.load("woken")
            piOwner = try source.load("piOwner")
            handedOver = try source.load("handedOver")
            requeueTarget = try source.load("requeueTarget")
            deadline = try source.load("deadline")
            try ImageValidation.require(task != nil, field: "task", "a futex waiter without a task")
            try ImageValidation.require(bitset != 0, field: "bitset", "an empty bitset")
            try ImageValidation.require(!handedOver || woken && piOwner != nil, field: "handedOver",
                                        "handed a PI futex without a wake")
        }
    }

    private let lock = Mutex<Void>(())
    private var queues: [FutexWord.Key: [Waiter]] = [:]

    /// FUTEX_WAIT: EAGAIN unless the word holds `expected` (checked under
    /// the queue lock, so a wake after the change cannot be missed); then
    /// sleeps until woken (0), the deadline on `clock` (ETIMEDOUT), or an
    /// interruption: EINTR when the task must exit, else ERESTARTSYS.
    func wait(_ task: Task, on word: FutexWord, expecting expected: UInt32, bitset: UInt32,
              clock: Int32, deadline: Int64?) throws(SyscallError) {
        // Requeued meanwhile, it may be on another word: only its kind must fit.
        if let kept = reentered(task, fits: { $0.count == 1 && !$0[0].isPI && $0[0].bitset == bitset }) {
            _ = try sleep(task, kept, clock: clock, deadline: kept[0].deadline, interrupted: .erestartsys)
            return
        }
        let waiter = Waiter(task: task, key: word.key, bitset: bitset)
        try enqueue(task, waiter, on: word, expecting: expected)
        _ = try sleep(task, [waiter], clock: clock, deadline: deadline, interrupted: .erestartsys)
    }

    /// Queues `waiter` on `word` if it holds `expected`, else EAGAIN.
    /// Reset, look, block: a notify after the look ends the block.
    private func enqueue(_ task: Task, _ waiter: Waiter, on word: FutexWord, expecting expected: UInt32) throws(SyscallError) {
        task.waiter.reset()
        let queued = lock.withLock { _ -> Bool in
            guard cshim_atomic_load_u32(word.pointer) == expected else { return false }
            queues[word.key, default: []].append(waiter)
            return true
        }
        guard queued else { throw .eagain }
    }

    /// futex_waitv: EAGAIN unless every word holds its value (all looked at
    /// and queued under the lock at once); then sleeps as `wait` on all of
    /// them and returns the index of the (last) one woken.
    func waitv(_ task: Task, on words: [(word: FutexWord, expected: UInt32)], clock: Int32,
               deadline: Int64?) throws(SyscallError) -> Int {
        if let kept = reentered(task, fits: { $0.count == words.count && !$0.contains(where: \.isPI) }) {
            return try sleep(task, kept, clock: clock, deadline: kept[0].deadline, interrupted: .erestartsys)
        }
        let waiters = words.map { Waiter(task: task, key: $0.word.key, bitset: LinuxFutex.FUTEX_BITSET_MATCH_ANY) }
        task.waiter.reset()
        let queued = lock.withLock { _ -> Bool in
            guard words.allSatisfy({ cshim_atomic_load_u32($0.word.pointer) == $0.expected }) else { return false }
            for waiter in waiters { queues[waiter.key, default: []].append(waiter) }
            return true
        }
        guard queued else { throw .eagain }
        return try sleep(task, waiters, clock: clock, deadline: deadline, interrupted: .erestartsys)
    }

    /// Sleeps, queued as `waiters`, until one is woken (returns the last
    /// woken's index; the others leave their queues), the deadline on
    /// `clock` (ETIMEDOUT), or an interruption: EINTR when the task must
    /// exit, else `interrupted` (a restart code). The checkpoint's pause,
    /// when no signal came with it, leaves them queued, kept by the task
    /// for its re-entry (`Task.keptForRestart`) with the deadline.
    /// The caller reset the task's waiter before they were queued.
    private func sleep(_ task: Task, _ waiters: [Waiter], clock: Int32, deadline: Int64?,
                       interrupted restart: SyscallError) throws(SyscallError) -> Int {
        while true {
            var hostDeadline = Int64.max / 2
            var expired = false
            if let deadline {
                let current: Int64
                do { current = try Time.now(task, clock) } catch { current = deadline }
                expired = current >= deadline
                // A saturated deadline less a negative time (a realtime clock set before 1970) overflows.
                let remaining = deadline.subtractingReportingOverflow(current)
                hostDeadline = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
                    .addingSaturating(remaining.overflow ? Int64.max : remaining.partialValue)
            }
            var interrupted = false
            // A re-entered wait may have been woken while its task was parked.
            if !expired, !lock.withLock({ _ in waiters.contains { $0.woken } }) {
                // A wake-up, or a notify meant for an earlier wait: the
                // queue's `woken` below tells them apart.
                do { try task.waiter.block(untilHostMonotonic: hostDeadline) } catch { interrupted = true }
            }
            let keep = interrupted && !expired && task.kernel?.isPaused == true && !task.isInterruptedBySignal
            let woken = lock.withLock { _ -> Int?? in
                let woken = waiters.lastIndex { $0.woken }
                guard woken != nil || interrupted || expired else { return nil }
                if woken == nil, keep {
                    for waiter in waiters { waiter.deadline = deadline }
                    return .some(nil)
                }
                for waiter in waiters where !waiter.woken { removeLocked(waiter) }
                return .some(woken)
            }
            switch woken {
            case let index??: return index
            case .some(nil):
                if expired { throw .etimedout }
                if task.mustExit { throw .eintr }
                if keep { task.keptForRestart.futexWaiters = waiters }
                throw restart
            case nil:
                continue // the host deadline passed: look at the virtual clock again
            }
        }
    }

    /// FUTEX_WAKE: wakes up to `count` waiters on `key` whose bitset
    /// matches; returns how many. EINVAL (those before still woken) if a PI
    /// waiter comes first, as Linux's futex_wake.
    func wake(_ key: FutexWord.Key, count: Int, bitset: UInt32 = LinuxFutex.FUTEX_BITSET_MATCH_ANY) throws(SyscallError) -> Int {
        let (woken, refused) = lock.withLock { _ in wakeLocked(key, count: count, bitset: bitset) }
        for waiter in woken { waiter.task?.waiter.notify() }
        if refused { throw .einval }
        return woken.count
    }

    /// FUTEX_REQUEUE and FUTEX_CMP_REQUEUE (EAGAIN if the word does not
    /// hold `expected`): wakes up to `wake` waiters and moves up to `move`
    /// of the rest to `target`; returns both counts together. A PI waiter
    /// met on the way stops it with EINVAL (what was done stays done).
    func requeue(from word: FutexWord, to target: FutexWord.Key, wake: Int, move: Int,
                 expecting expected: UInt32?) throws(SyscallError) -> Int {
        let result = lock.withLock { _ -> (woken: [Waiter], moved: Int, refused: Bool)? in
            if let expected, cshim_atomic_load_u32(word.pointer) != expected { return nil }
            let (woken, refused) = wakeLocked(word.key, count: wake, bitset: LinuxFutex.FUTEX_BITSET_MATCH_ANY)
            guard !refused, word.key != target, var waiting = queues[word.key], move > 0 else { return (woken, 0, refused) }
            let pi = waiting.prefix(move).contains { $0.isPI }
            let moved = Array(waiting.prefix { !$0.isPI }.prefix(move))
            waiting.removeFirst(moved.count)
            queues[word.key] = waiting.isEmpty ? nil : waiting
            for waiter in moved { waiter.key = target }
            queues[target, default: []].append(contentsOf: moved)
            return (woken, moved.count, pi)
        }
        guard let result else { throw .eagain }
        for waiter in result.woken { waiter.task?.waiter.notify() }
        if result.refused { throw .einval }
        return result.woken.count + result.moved
    }

    /// FUTEX_WAIT_REQUEUE_PI (futex_wait_requeue_pi): waits on `word` as
    /// FUTEX_WAIT does (EAGAIN unless it holds `expected`) until a
    /// CMP_REQUEUE_PI to `target` either gives it the PI futex (0) or moves
    /// it onto the futex's waiters, where it waits as LOCK_PI does until an
    /// unlock hands the futex over (0) or its owner dies (it takes it over).
    /// ETIMEDOUT at the absolute deadline on `clock`; a signal before the
    /// requeue restarts the call (ERESTARTNOINTR), after it ends it with
    /// EAGAIN (Linux's EWOULDBLOCK: a restart would find the word changed).
    func waitRequeuePI(_ task: Task, on word: FutexWord, expecting expected: UInt32, target: FutexWord.Key,
                       at targetAddress: UInt64, shared: Bool, clock: Int32, deadline callDeadline: Int64?) throws(SyscallError) {
        // Kept through a pause: still on `word`, or requeued onto `target` meanwhile.
        let kept = reentered(task) { kept in
            kept.count == 1 && kept[0].requeueTarget == target && (kept[0].key == word.key || kept[0].key == target)
        }?.first
        let waiter: Waiter
        if let kept {
            waiter = kept
        } else {
            waiter = Waiter(task: task, key: word.key, bitset: LinuxFutex.FUTEX_BITSET_MATCH_ANY)
            waiter.requeueTarget = target
            try enqueue(task, waiter, on: word, expecting: expected)
        }
        let deadline = kept.map(\.deadline) ?? callDeadline
        do {
            _ = try sleep(task, [waiter], clock: clock, deadline: deadline, interrupted: .erestartnointr)
        } catch .erestartnointr {
            guard lock.withLock({ _ in waiter.piOwner != nil }) else { throw .erestartnointr }
            throw interruptedAfterRequeue(task, targetAddress, shared: shared, clock: clock, deadline: deadline)
        }
        let woken = lock.withLock { _ in (handedOver: waiter.handedOver, owner: waiter.piOwner) }
        if woken.handedOver { return }
        // Requeued, then woken without the futex: its owner died; take it over as LOCK_PI does.
        try lockAfterRequeue(task, targetAddress, shared: shared, clock: clock, deadline: deadline, deadOwner: woken.owner)
    }

    /// A requeued WAIT_REQUEUE_PI waiting on for its PI futex (after its
    /// owner died, or through restart_syscall after a checkpoint), with the
    /// call's interruption rules.
    func lockAfterRequeue(_ task: Task, _ address: UInt64, shared: Bool, clock: Int32, deadline: Int64?,
                          deadOwner: UInt32? = nil) throws(SyscallError) {
        do {
            try lockPI(task, address, shared: shared, trying: false, clock: clock, deadline: deadline, deadOwner: deadOwner)
        } catch .erestartnointr {
            throw interruptedAfterRequeue(task, address, shared: shared, clock: clock, deadline: deadline)
        }
    }

    /// What ends a requeued waiter's interrupted wait: EAGAIN for a signal,
    /// as Linux; anything else (a checkpoint, a stop) it does not see: it
    /// goes on waiting for the PI futex through restart_syscall.
    private func interruptedAfterRequeue(_ task: Task, _ address: UInt64, shared: Bool, clock: Int32,
                                         deadline: Int64?) -> SyscallError {
        if task.hasDeliverableSignal { return .eagain }
        task.restartBlock = .futexLockPI(address: address, shared: shared, clock: clock, deadline: deadline)
        return .erestartRestartblock
    }

    /// FUTEX_CMP_REQUEUE_PI (futex_requeue with requeue_pi): EAGAIN unless
    /// `word` holds `expected`. The first waiter, which must be a
    /// WAIT_REQUEUE_PI one for `target` (else EINVAL), gets the PI futex if
    /// it is free (its TID written, FUTEX_WAITERS with it if more are to
    /// come, and it wakes); EDEADLK if it owns it already, ESRCH if the
    /// owner does not exist. Then up to `move` more (the first too, if it
    /// did not get it) become waiters of the futex's owner; one of another
    /// kind, for another futex (EINVAL) or that owns it (EDEADLK) stops the
    /// requeue. Returns how many were woken or moved.
    func requeuePI(_ task: Task, from word: FutexWord, to target: FutexWord, move: Int,
                   expecting expected: UInt32) throws(SyscallError) -> Int {
        guard let namespace = task.kernel?.pidNamespace else { throw .esrch }
        let (woken, count, failure) = try lock.withLock { _ throws(SyscallError) -> (Waiter?, Int, SyscallError?) in
            guard cshim_atomic_load_u32(word.pointer) == expected else { throw .eagain }
            guard let top = queues[word.key]?.first else { return (nil, 0, nil) }
            guard top.piOwner == nil, top.requeueTarget == target.key else { throw .einval }
            let topID = top.tid
            // futex_proxy_trylock_atomic: take the futex for the first waiter, or find its owner.
            var owner: UInt32
            var woken: Waiter?
            var value = cshim_atomic_load_u32(target.pointer)
            while true {
                owner = value & LinuxFutex.FUTEX_TID_MASK
                if owner == topID { throw .edeadlk }
                if owner == 0 {
                    let others = queues[target.key]?.contains { $0.piOwner != nil } ?? false
                    let taken = topID | value & LinuxFutex.FUTEX_OWNER_DIED
                        | (move > 0 || others ? LinuxFutex.FUTEX_WAITERS : 0)
                    let seen = cshim_atomic_cmpxchg_u32(target.pointer, value, taken)
                    guard seen == value else { value = seen; continue }
                    removeLocked(top)
                    top.woken = true
                    top.handedOver = true
                    top.piOwner = topID
                    attachPIWaitersLocked(target.key, to: topID)
                    owner = topID
                    woken = top
                    break
                }
                let contended = value | LinuxFutex.FUTEX_WAITERS
                if contended != value {
                    let seen = cshim_atomic_cmpxchg_u32(target.pointer, value, contended)
                    guard seen == value else { value = seen; continue }
                }
                guard let ownerID = Int32(exactly: owner), namespace.task(ownerID) != nil else { throw .esrch }
                break
            }
            var count = woken == nil ? 0 : 1
            var failure: SyscallError?
            while count <= move, let next = queues[word.key]?.first {
                guard next.piOwner == nil, next.requeueTarget == target.key else { failure = .einval; break }
                if next.tid == owner { failure = .edeadlk; break }
                removeLocked(next)
                next.key = target.key
                next.piOwner = owner
                queues[target.key, default: []].append(next)
                count += 1
            }
            return (woken, count, failure)
        }
        woken?.task?.waiter.notify()
        if let failure { throw failure }
        return count
    }

    /// FUTEX_WAKE_OP: changes the word at `target` atomically by the
    /// encoded operation, wakes up to `wake` waiters on `key`, and, if the
    /// old value passes the encoded comparison, up to `wakeTarget` on the
    /// target; returns how many woke.
    func wakeOp(_ key: FutexWord.Key, _ target: FutexWord, wake: Int, wakeTarget: Int,
                encoded: UInt32) throws(SyscallError) -> Int {
        var operation = (encoded >> 28) & 0xf
        let comparison = (encoded >> 24) & 0xf
        var argument = (encoded >> 12) & 0xfff
        let comparand = encoded & 0xfff
        if operation & LinuxFutex.FUTEX_OP_OPARG_SHIFT != 0 {
            // Linux refuses shifts past 31 (and warns once).
            guard argument <= 31 else { throw .einval }
            argument = 1 << argument
            operation &= ~LinuxFutex.FUTEX_OP_OPARG_SHIFT
        }
        guard operation <= LinuxFutex.FUTEX_OP_XOR, comparison <= LinuxFutex.FUTEX_OP_CMP_GE else { throw .enosys }
        let (woken, refused) = lock.withLock { _ -> ([Waiter], Bool) in
            let old = cshim_atomic_futex_op(target.pointer, Int32(operation), argument)
            var (woken, refused) = wakeLocked(key, count: wake, bitset: LinuxFutex.FUTEX_BITSET_MATCH_ANY)
            if !refused, Self.compare(old, comparison, comparand) {
                let more = wakeLocked(target.key, count: wakeTarget, bitset: LinuxFutex.FUTEX_BITSET_MATCH_ANY)
                woken += more.woken
                refused = more.refused
            }
            return (woken, refused)
        }
        for waiter in woken { waiter.task?.waiter.notify() }
        if refused { throw .einval }
        return woken.count
    }

    /// FUTEX_LOCK_PI, LOCK_PI2 and TRYLOCK_PI (futex_lock_pi): takes a free
    /// word (its TID 0; FUTEX_OWNER_DIED kept) by writing the caller's TID;
    /// else sets FUTEX_WAITERS and, unless `trying` (EAGAIN), sleeps until an
    /// unlock hands the lock over or its owner dies. EDEADLK if the caller
    /// owns it, ESRCH if its owner does not exist; ETIMEDOUT at the
    /// deadline; a signal restarts the call (ERESTARTNOINTR).
    /// `deadOwner`: the owner a requeued waiter was told died. A waiter
    /// the pause kept (a LOCK_PI's, or a requeued WAIT_REQUEUE_PI's whose
    /// restart_syscall this is) waits on in its place, which an unlock or
    /// its owner's exit meanwhile reached.
    func lockPI(_ task: Task, _ address: UInt64, shared: Bool, trying: Bool, clock: Int32,
                deadline callDeadline: Int64?, deadOwner diedOwner: UInt32? = nil) throws(SyscallError) {
        guard let namespace = task.kernel?.pidNamespace else { throw .esrch }
        let tid = UInt32(truncatingIfNeeded: task.id)
        var word = try FutexWord(task, address, shared: shared, forWriting: true)
        let kept = trying ? nil : reentered(task) { kept in
            kept.count == 1 && kept[0].piOwner != nil && kept[0].key == word.key
        }?.first
        let waiter = kept ?? Waiter(task: task, key: word.key, bitset: LinuxFutex.FUTEX_BITSET_MATCH_ANY, piOwner: 0)
        let deadline = kept.map(\.deadline) ?? callDeadline
        // The owner the last wake-up said died: its TID may still be in the word.
        var deadOwner = diedOwner
        var queued = kept != nil
        while true {
            if !queued {
                task.waiter.reset()
                queued = try lock.withLock { _ throws(SyscallError) -> Bool in
                    try attemptPILocked(word, tid: tid, waiter: waiter, deadOwner: deadOwner, trying: trying, namespace)
                }
                guard queued else { return }
            }
            queued = false
            _ = try sleep(task, [waiter], clock: clock, deadline: deadline, interrupted: .erestartnointr)
            let woken = lock.withLock { _ in (handedOver: waiter.handedOver, owner: waiter.piOwner) }
            guard !woken.handedOver else { return }
            deadOwner = woken.owner
            // Slept: the word may have been unmapped or remapped meanwhile.
            word = try FutexWord(task, address, shared: shared, forWriting: true)
            lock.withLock { _ in
                waiter.key = word.key
                waiter.woken = false
            }
        }
    }

    /// One try at a PI lock under the queue lock: false when it was taken,
    /// true when `waiter` was queued for its owner.
    private func attemptPILocked(_ word: FutexWord, tid: UInt32, waiter: Waiter, deadOwner: UInt32?, trying: Bool,
                                 _ namespace: PIDNamespace) throws(SyscallError) -> Bool {
        var value = cshim_atomic_load_u32(word.pointer)
        while true {
            let owner = value & LinuxFutex.FUTEX_TID_MASK
            if owner == tid { throw .edeadlk }
            if owner == 0 || owner == deadOwner {
                // Free, or its owner died: FUTEX_WAITERS stays while anyone
                // waits; taken from a dead owner, the word says so with both
                // flags (as Linux's fixup_pi_state_owner).
                let others = queues[word.key]?.contains { $0.piOwner != nil } ?? false
                let flags = deadOwner != nil ? LinuxFutex.FUTEX_OWNER_DIED | LinuxFutex.FUTEX_WAITERS
                    : value & LinuxFutex.FUTEX_OWNER_DIED | (others ? LinuxFutex.FUTEX_WAITERS : 0)
                let taken = tid | flags
                let seen = cshim_atomic_cmpxchg_u32(word.pointer, value, taken)
                guard seen == value else { value = seen; continue }
                attachPIWaitersLocked(word.key, to: tid)
                return false
            }
            let contended = value | LinuxFutex.FUTEX_WAITERS
            if contended != value {
                let seen = cshim_atomic_cmpxchg_u32(word.pointer, value, contended)
                guard seen == value else { value = seen; continue }
            }
            guard let ownerID = Int32(exactly: owner), namespace.task(ownerID) != nil else { throw .esrch }
            if trying { throw .eagain }
            queues[word.key, default: []].append(waiter)
            attachPIWaitersLocked(word.key, to: owner)
            return true
        }
    }

    /// Every LOCK_PI waiter on `key` now waits for `owner`.
    private func attachPIWaitersLocked(_ key: FutexWord.Key, to owner: UInt32) {
        for waiter in queues[key] ?? [] where waiter.piOwner != nil { waiter.piOwner = owner }
    }

    /// FUTEX_UNLOCK_PI (futex_unlock_pi): EPERM unless the caller owns the
    /// word; the lock goes to the first LOCK_PI waiter (its TID and
    /// FUTEX_WAITERS in the word), or the word becomes 0.
    func unlockPI(_ task: Task, _ address: UInt64, shared: Bool) throws(SyscallError) {
        let tid = UInt32(truncatingIfNeeded: task.id)
        guard try task.copyIn(UInt32.self, from: address) & LinuxFutex.FUTEX_TID_MASK == tid else { throw .eperm }
        let word = try FutexWord(task, address, shared: shared, forWriting: true)
        let next = try lock.withLock { _ throws(SyscallError) -> Waiter? in
            var value = cshim_atomic_load_u32(word.pointer)
            while true {
                guard value & LinuxFutex.FUTEX_TID_MASK == tid else { throw .eperm }
                let next = queues[word.key]?.first { $0.piOwner != nil }
                let nextID = next?.tid
                let released = nextID.map { $0 | LinuxFutex.FUTEX_WAITERS } ?? 0
                let seen = cshim_atomic_cmpxchg_u32(word.pointer, value, released)
                guard seen == value else { value = seen; continue }
                guard let next, let nextID else { return nil }
                removeLocked(next)
                next.woken = true
                next.handedOver = true
                attachPIWaitersLocked(word.key, to: nextID)
                return next
            }
        }
        next?.task?.waiter.notify()
    }

    /// exit_pi_state_list: the first waiter for each PI lock `tid` owned is
    /// woken to take it over (the others then wait for that one).
    func releasePILocks(ownedBy tid: Int32) {
        let owner = UInt32(truncatingIfNeeded: tid)
        let woken = lock.withLock { _ -> [Waiter] in
            var woken: [Waiter] = []
            for waiting in queues.values {
                guard let first = waiting.first(where: { $0.piOwner == owner }) else { continue }
                removeLocked(first)
                first.woken = true
                woken.append(first)
            }
            return woken
        }
        for waiter in woken { waiter.task?.waiter.notify() }
    }

    /// FUTEX_OP_CMP_*: signed comparisons of the old value with the
    /// 12-bit comparand (sign-extended, as Linux does).
    private static func compare(_ old: UInt32, _ comparison: UInt32, _ comparand: UInt32) -> Bool {
        let value = Int32(bitPattern: old)
        let other = Int32(bitPattern: comparand << 20) >> 20
        switch comparison {
        case LinuxFutex.FUTEX_OP_CMP_EQ: return value == other
        case LinuxFutex.FUTEX_OP_CMP_NE: return value != other
        case LinuxFutex.FUTEX_OP_CMP_LT: return value < other
        case LinuxFutex.FUTEX_OP_CMP_LE: return value <= other
        case LinuxFutex.FUTEX_OP_CMP_GT: return value > other
        default: return value >= other
        }
    }

    /// Wakes up to `count` waiters on `key` whose bitset matches, in
    /// order; a PI waiter met first stops it (`refused`: Linux's EINVAL).
    private func wakeLocked(_ key: FutexWord.Key, count: Int, bitset: UInt32) -> (woken: [Waiter], refused: Bool) {
        guard count > 0, var waiting = queues[key] else { return ([], false) }
        var woken: [Waiter] = []
        var refused = false
        waiting.removeAll { waiter in
            guard woken.count < count, !refused else { return false }
            if waiter.isPI { refused = true; return false }
            guard waiter.bitset & bitset != 0 else { return false }
            waiter.woken = true
            woken.append(waiter)
            return true
        }
        queues[key] = waiting.isEmpty ? nil : waiting
        return (woken, refused)
    }

    /// The waiters `task`'s re-entered call kept through the pause, when
    /// `fits` (under the lock) says they are this call's; others leave
    /// their queues and the call starts afresh. Resets the task's waiter
    /// first, so a wake from now on ends the block.
    private func reentered(_ task: Task, fits: ([Waiter]) -> Bool) -> [Waiter]? {
        let kept = task.takeReenteredFutexWait()
        guard !kept.isEmpty else { return nil }
        task.waiter.reset()
        let taken = lock.withLock { _ -> Bool in
            guard fits(kept) else {
                for waiter in kept { removeLocked(waiter) }
                return false
            }
            return true
        }
        return taken ? kept : nil
    }

    /// Waiters kept for a re-entry that will not come (the task exits, runs
    /// past the call or re-entered it and did not take them up) leave their queues.
    func drop(_ waiters: [Waiter]) {
        lock.withLock { _ in for waiter in waiters { removeLocked(waiter) } }
    }

    /// A handler ends the call whose waiters the pause kept, before its
    /// re-entry: they leave their queues. Returns what the call answers
    /// instead of its restart code, or nil: a wake meanwhile (an unlock's
    /// handover, for a PI waiter) makes it 0 (waitv: the index woken),
    /// as Linux's call returns it before the handler runs; a requeued
    /// WAIT_REQUEUE_PI says EAGAIN, as for a signal after the requeue.
    func settleKept(_ waiters: [Waiter]) -> Int64? {
        lock.withLock { _ -> Int64? in
            for waiter in waiters where !waiter.woken { removeLocked(waiter) }
            if let index = waiters.lastIndex(where: { $0.woken && (!$0.isPI || $0.handedOver) }) { return Int64(index) }
            if waiters.contains(where: { $0.requeueTarget != nil && $0.piOwner != nil }) {
                return SyscallError.eagain.returnValue
            }
            return nil
        }
    }

    /// The waiters queued now, each queue in its order: what an image holds.
    func savedWaiters() -> [Waiter] {
        lock.withLock { _ in queues.values.flatMap { $0 } }
    }

    /// Queues a loaded image's waiters (`savedWaiters`) again, once every
    /// object is loaded: each must be kept by its task for its re-entry.
    func restore(_ waiters: [Waiter]) throws {
        var seen = Set<ObjectIdentifier>()
        for waiter in waiters {
            try ImageValidation.require(seen.insert(ObjectIdentifier(waiter)).inserted && !waiter.woken
                                        && waiter.task?.keptForRestart.futexWaiters.contains { $0 === waiter } == true,
                                        field: "futexWaiters", "a queued futex waiter no task keeps for its re-entry")
        }
        lock.withLock { _ in
            for waiter in waiters { queues[waiter.key, default: []].append(waiter) }
        }
    }

    private func removeLocked(_ waiter: Waiter) {
        guard var waiting = queues[waiter.key] else { return }
        waiting.removeAll { $0 === waiter }
        queues[waiter.key] = waiting.isEmpty ? nil : waiting
    }
}

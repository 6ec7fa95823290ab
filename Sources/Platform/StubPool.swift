import CShim
import Glibc
import Synchronization

/// Idle stub processes ready to become an address space: the emptied stubs
/// of address spaces that ended (`AddressSpace.recycle()`), kept with their
/// owner thread still tracing them and a stub thread already cloned for the
/// next one (`Prepared`), and spares made ahead of time (`Idle`: not traced,
/// in group-stop). Making a stub forks the Sentry, which costs milliseconds
/// (its page tables are copied, then thrown away by the stub); taking a
/// spare costs an attach, taking a prepared one nothing. gVisor's ptrace
/// platform keeps such a pool for the same reason.
///
/// An idle stub maps nothing but its stub page and has the MemoryFile it was
/// made with as its only FD. It carries no application state: the pool
/// belongs to the host process, not to a kernel, and is never saved. Several
/// kernels may share it (tests run in parallel, a save/restore cycle's old
/// and new kernel): each takes only stubs of its own MemoryFile, and a
/// MemoryFile that closes (its kernel thrown away) has its idle stubs killed
/// (`forget`), so they do not keep its memory alive.
final class StubPool: Sendable {
    static let shared = StubPool()

    /// The most idle stubs kept, of both kinds; a stub given beyond that is killed.
    static let capacity = 8
    /// How many idle stubs the spare maker keeps ready for one MemoryFile.
    static let spares = 2

    /// A spare: made, never attached.
    struct Idle: Sendable {
        let pid: Int32
        let memoryFile: MemoryFileIdentity
    }

    /// An emptied stub whose owner still traces its first thread, with the
    /// stub thread it cloned for the next address space's first joiner.
    struct Prepared: Sendable {
        let owner: AddressSpaceOwner
        let ready: Int32
        let memoryFile: MemoryFileIdentity
    }

    private struct State {
        var idle: [Idle] = []
        var prepared: [Prepared] = []
        /// Whether a spare maker thread runs (one at a time).
        var makingSpares = false
        /// The MemoryFile of the last `makeSpares` call: its first address
        /// space makes none, so a container that never forks pays for no spare.
        var sparesAskedFor: MemoryFileIdentity?
        /// MemoryFiles closed: a stub of one given later (a spare made
        /// meanwhile, a stub recycled meanwhile) is refused. One entry per
        /// kernel thrown away.
        var closed: Set<MemoryFileIdentity> = []

        var count: Int { idle.count + prepared.count }

        func count(of memoryFile: MemoryFileIdentity) -> Int {
            idle.count(where: { $0.memoryFile == memoryFile }) + prepared.count(where: { $0.memoryFile == memoryFile })
        }
    }
    /// Guards the idle list. Taken with no other lock held; nothing is
    /// called under it.
    private let state = Mutex(State())

    /// A prepared stub of `memoryFile`, the most recently recycled first;
    /// nil when there is none.
    func takePrepared(_ memoryFile: MemoryFileIdentity) -> Prepared? {
        state.withLock { state -> Prepared? in
            // An address space of it is being made: it is open (a closed one's inode number was reused).
            state.closed.remove(memoryFile)
            guard let index = state.prepared.lastIndex(where: { $0.memoryFile == memoryFile }) else { return nil }
            return state.prepared.remove(at: index)
        }
    }

    /// A spare of `memoryFile`; nil when there is none. The stubs of other
    /// MemoryFiles stay for their own.
    func take(_ memoryFile: MemoryFileIdentity) -> Idle? {
        state.withLock { state -> Idle? in
            state.closed.remove(memoryFile)
            guard let index = state.idle.lastIndex(where: { $0.memoryFile == memoryFile }) else { return nil }
            return state.idle.remove(at: index)
        }
    }

    /// `memoryFile` is closing: its idle stubs are killed (and their owners
    /// end) and none is kept from now on.
    func forget(_ memoryFile: MemoryFileIdentity) {
        let (idle, prepared) = state.withLock { state -> ([Idle], [Prepared]) in
            state.closed.insert(memoryFile)
            let idle = state.idle.filter { $0.memoryFile == memoryFile }
            let prepared = state.prepared.filter { $0.memoryFile == memoryFile }
            state.idle.removeAll { $0.memoryFile == memoryFile }
            state.prepared.removeAll { $0.memoryFile == memoryFile }
            return (idle, prepared)
        }
        for stub in idle { StubProcess.killAndReap(stub.pid) }
        for stub in prepared { stub.owner.stop { leader in StubProcess.killAndReap(leader.pid) } }
    }

    /// Keeps a spare for a later `take`; false (keeping nothing) when the
    /// pool is full or its MemoryFile closed, and the caller kills it.
    func give(_ stub: Idle) -> Bool {
        state.withLock { state in
            guard state.count < Self.capacity, !state.closed.contains(stub.memoryFile) else { return false }
            state.idle.append(stub)
            return true
        }
    }

    /// Keeps a recycled stub for a later `takePrepared`; false as `give`,
    /// and the caller ends it and its owner.
    func give(prepared stub: Prepared) -> Bool {
        state.withLock { state in
            guard state.count < Self.capacity, !state.closed.contains(stub.memoryFile) else { return false }
            state.prepared.append(stub)
            return true
        }
    }

    /// Starts making spares of `memoryFile` (open as `descriptor`, which the
    /// caller keeps) on a thread of their own when fewer than `spares` are
    /// idle, from its second address space on, so that the next ones find
    /// one ready. Failures only mean the next address space makes its stub
    /// itself.
    func makeSpares(memoryFile: MemoryFileIdentity, descriptor: Int32) {
        let start = state.withLock { state -> Bool in
            guard state.sparesAskedFor == memoryFile else {
                state.sparesAskedFor = memoryFile
                return false
            }
            guard !state.makingSpares,
                  state.count(of: memoryFile) < Self.spares else { return false }
            state.makingSpares = true
            return true
        }
        guard start else { return }
        // Its own descriptor: the caller's may be closed (its kernel gone) while spares are made.
        let own = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else {
            state.withLock { $0.makingSpares = false }
            return
        }
        do {
            _ = try DedicatedThread(name: "stub-spares") { [self] in
                makeSpares(memoryFile, own)
            }
        } catch {
            close(own)
            state.withLock { $0.makingSpares = false }
        }
    }

    private func makeSpares(_ memoryFile: MemoryFileIdentity, _ descriptor: Int32) {
        defer {
            close(descriptor)
            state.withLock { $0.makingSpares = false }
        }
        while state.withLock({ state in state.count(of: memoryFile) < Self.spares }) {
            guard let pid = try? StubProcess.create(memoryFile: descriptor) else { return }
            if !give(Idle(pid: pid, memoryFile: memoryFile)) {
                StubProcess.killAndReap(pid)
                return
            }
        }
    }
}

/// Which MemoryFile a stub holds: the open file's device and inode (a
/// descriptor number may be reused for another file).
struct MemoryFileIdentity: Hashable, Sendable {
    let device: UInt64
    let inode: UInt64

    init(descriptor: Int32) throws(PlatformError) {
        var status = stat()
        if fstat(descriptor, &status) != 0 {
            throw PlatformError(.createStub, errno: errno, detail: "fstat of the MemoryFile")
        }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}

/// Making and ending stub processes on the host.
enum StubProcess {
    /// Forks a new stub holding `memoryFile` (see `cshim_stub_create`),
    /// with the stub seccomp filter unless a benchmark turned it off.
    static func create(memoryFile: Int32) throws(PlatformError) -> Int32 {
        let filter = AddressSpace.testUnfiltered.load(ordering: .relaxed) ? [] : try StubFilter.program.get()
        let created = filter.withUnsafeBufferPointer { program in
            cshim_stub_create(memoryFile, program.isEmpty ? nil : program.baseAddress,
                              UInt16(truncatingIfNeeded: program.count))
        }
        if created < 0 { throw PlatformError(.createStub, errno: -created) }
        return created
    }

    /// Kills a stub and reaps it; any thread of the Sentry may (the stub is
    /// the process's child, and its tracer's if it has one).
    static func killAndReap(_ pid: Int32) {
        _ = cshim_kill(pid, SIGKILL)
        while true {
            var status: Int32 = 0
            // ECHILD: a Context's wait collected it first.
            if cshim_wait_thread(pid, &status) < 0 { return }
            if cshim_status_exited(status) != 0 || cshim_status_signaled(status) != 0 { return }
        }
    }
}

import Dispatch
import Glibc
import Logging
import Sentry
import State
import Synchronization

/// The save/restore test mode (`runsc run --debug-save-restore-every N`):
/// every N application syscalls the kernel is paused as for a checkpoint,
/// saved to an image under the container's state directory, thrown away
/// (its tasks' host threads end, its stubs are killed, its MemoryFile is
/// released) and a new kernel is restored from the image through the
/// restore path `runsc restore` takes; the container's stdio stays where
/// it is. A feature that does not survive a checkpoint at any moment shows
/// up as output that differs from a plain run.
extension Loader {
    /// Arms the mode on the running kernel and starts the thread that
    /// carries the cycles out (once: later kernels are armed by the cycle).
    func startSaveRestoreCycles() {
        guard let cycles = saveRestoreCycles else { return }
        kernel.armSaveRestoreCycles(every: cycles.interval) { cycles.due() }
        cycles.start { [self] in runSaveRestoreCycle(cycles) }
    }

    /// One cycle, under `checkpointLock` like a checkpoint. A kernel whose
    /// init is exiting is not saved: it goes on. A failure to save or to
    /// restore leaves the old kernel running and is counted as a failure.
    private func runSaveRestoreCycle(_ cycles: SaveRestoreCycles) {
        checkpointLock.withLock { paused in
            // A container `runsc pause` holds stays as it is.
            guard !paused else { return }
            let started = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            var timer = PhaseTimer()
            let old = kernel
            do {
                try old.pause()
            } catch {
                cycles.failed("\(error)")
                return
            }
            timer.mark("pause")
            guard let initGroup = old.initThreadGroup, !initGroup.isExiting, initGroup.exitStatus == nil else {
                old.resume()
                return
            }
            let image = cycles.nextImage()
            let restored: RestoredKernel
            do throws(LoaderError) {
                old.writeBackSharedMappings()
                HostFile.beginCheckpoint()
                do {
                    _ = try save(to: image, compression: .none, durable: false, started: started, timer: &timer)
                } catch {
                    throw LoaderError("\(error)")
                }
                restored = try Loader.restoreKernel(image: image, args: args, logger: logger)
                timer.mark("restore")
            } catch {
                old.resume()
                cycles.failed("\(error)")
                return
            }
            old.discard()
            timer.mark("discard")
            restored.kernel.adoptExitNotices(from: old)
            restored.kernel.armSaveRestoreCycles(every: cycles.interval) { cycles.due() }
            running.withLock { $0 = Running(kernel: restored.kernel, initTask: restored.initTask,
                                            restoredTasks: restored.tasks) }
            watchProcessExits()
            for task in restored.tasks {
                do {
                    try task.start()
                } catch {
                    logger.error("save/restore cycle: cannot start task \(task.id): \(error)")
                    task.threadGroup?.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
                }
            }
            restored.kernel.startTimers()
            timer.mark("start")
            cycles.completed(nanoseconds: Clocks.hostNanoseconds(CLOCK_MONOTONIC) - started, phases: timer)
        }
    }
}

/// The mode's host-side state: the thread that runs cycles when the kernel's
/// syscall counter says one is due, the images' directory, and the counts
/// reported when the container ends (a log line, and a line appended to the
/// tally file when one is configured).
final class SaveRestoreCycles: Sendable {
    let interval: UInt64
    /// Two image slots, used in turn: a restored kernel's memory may still be
    /// loading from the last image while the next one is written.
    private let directory: String
    private let tally: String?
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    /// Whether a wake-up is pending, so a burst of due counts makes one cycle.
    private let pending = Atomic<Bool>(false)

    private struct Counts {
        var completed = 0
        var failed = 0
        var nanoseconds: Int64 = 0
        var stopped = false
        var started = false
    }

    /// A leaf lock.
    private let counts = Mutex(Counts())

    init?(_ configuration: LoaderArgs.Configuration, logger: Logger) {
        guard configuration.saveRestoreEvery > 0, let directory = configuration.saveRestoreDirectory else { return nil }
        self.logger = logger
        interval = configuration.saveRestoreEvery
        self.directory = directory
        tally = configuration.saveRestoreTally
    }

    /// Called on a task's thread every `interval` syscalls: wakes the cycle thread.
    func due() {
        if !pending.exchange(true, ordering: .acquiringAndReleasing) { wake.signal() }
    }

    func start(cycle: @escaping @Sendable () -> Void) {
        let first = counts.withLock { counts -> Bool in
            defer { counts.started = true }
            return !counts.started
        }
        guard first else { return }
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            logger.error("save/restore test mode: cannot create \(directory): errno \(errno)")
            return
        }
        do {
            try HostThread.start(detached: true) { [self] in
                while true {
                    wake.wait()
                    if counts.withLock({ $0.stopped }) { break }
                    cycle()
                    pending.store(false, ordering: .releasing)
                }
                for slot in slots { try? ImageWriter.remove(image: slot) }
                rmdir(directory)
            }
        } catch {
            logger.error("save/restore test mode: cannot start its thread: \(error)")
        }
    }

    private var slots: [String] { [directory + "/image-a", directory + "/image-b"] }

    /// Where the next cycle writes its image.
    func nextImage() -> String {
        // By completed cycles only: a failed cycle leaves the running kernel
        // loading from the slot the last completed one wrote, which the next
        // must not overwrite.
        slots[counts.withLock { $0.completed } % 2]
    }

    func completed(nanoseconds: Int64, phases: PhaseTimer) {
        let number = counts.withLock { counts -> Int in
            counts.completed += 1
            counts.nanoseconds += nanoseconds
            return counts.completed
        }
        logger.debug("save/restore cycle \(number): \(nanoseconds / 1000) µs: \(phases.description)")
    }

    func failed(_ reason: String) {
        counts.withLock { $0.failed += 1 }
        logger.error("save/restore cycle failed, the container goes on unsaved: \(reason)")
    }

    /// The container ended: no more cycles; reports the counts once.
    func finish() {
        let report = counts.withLock { counts -> Counts? in
            guard !counts.stopped else { return nil }
            counts.stopped = true
            return counts
        }
        guard let report else { return }
        wake.signal()
        let average = report.completed > 0 ? report.nanoseconds / Int64(report.completed) / 1000 : 0
        let line = "save/restore test mode: \(report.completed) cycle(s), \(report.failed) failed, every \(interval) syscalls, \(average) µs per cycle"
        logger.info("\(line)")
        guard let tally else { return }
        let fd = open(tally, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let text = Array("cycles \(report.completed) failed \(report.failed) microseconds \(report.nanoseconds / 1000)\n".utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

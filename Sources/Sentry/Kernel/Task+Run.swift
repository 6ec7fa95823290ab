import Glibc
import Logging
import Platform

/// The task's life on its dedicated pthread: switch to the application, handle
/// what stopped it (a syscall, a fault, an interrupt), repeat until it exits.
extension Task {
    /// Starts the task on a new pthread. For the first task of an MM the thread
    /// also creates the MM's stub process (ptrace ties the stub to its creator).
    public func start() throws(SyscallError) {
        // Known to the pause gate before its thread exists, so a checkpoint
        // starting meanwhile waits for it to park.
        kernel?.pauseGate.enter(self)
        do {
            thread = try DedicatedThread(name: "task-\(id)") { [self] in
                Task.runAsCurrent(self) { self.runOnOwnThread() }
            }
        } catch {
            kernel?.pauseGate.leave(self)
            throw .eagain
        }
    }

    private func runOnOwnThread() {
        guard let kernel else { return }
        Waiter.taskThreadStarted()
        defer { Waiter.taskThreadEnded() }
        guard let mm else {
            // Nothing to run (the loader refuses such an image): exit, so
            // the container ends instead of waiting for this task forever.
            kernel.logger.error("task \(id): no memory to run in")
            threadGroup?.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
            exitTask(holding: nil)
            kernel.pauseGate.leave(self)
            return
        }
        // A pooled host thread may carry sleep time from the task it ran before.
        _ = BlockedTime.take()
        // The MM whose address space this thread holds a reference to.
        var held: MemoryManager?
        do {
            var current = mm
            // The stub thread an exec kept for the new MM (`handOverAddressSpace`).
            var kept: Context?
            while true {
                let context: Context
                if let kept {
                    context = kept
                } else {
                    let mapper = try current.acquireAddressSpace { () throws(PlatformError) -> any AddressSpaceMapper in
                        PlatformAddressSpace(try AddressSpace(memoryFile: kernel.memoryFile.fd))
                    }
                    held = current
                    guard let platform = mapper as? PlatformAddressSpace else {
                        throw PlatformError(.ownership, errno: EINVAL, detail: "the MM's address space is not a stub")
                    }
                    context = try Context(addressSpace: platform.space)
                }
                kept = nil
                self.context = context
                setInterrupter(context.interrupter)
                try context.setFloatingPointState(floatingPoint)
                current.prefaultNewStub(instruction: registers.rip, stack: registers.rsp, threadPointer: registers.fsBase)
                try loop(context, kernel: kernel, mm: current)
                if kernel.pauseGate.isDiscarded { break }
                // An exec gave the task a new MM: it runs on in its stub,
                // emptied, when it was the stub's last user, else in a new
                // stub; the old MM (this process's alone: exec ended the
                // other threads) ends.
                guard let next = self.mm, next !== current else { break }
                setInterrupter(nil)
                // A fork may have moved the task to a fresh stub (`moveToFreshStub`).
                let running = self.context ?? context
                if !mustExit, current.handOverAddressSpace(to: next) {
                    current.release()
                    held = next
                    kept = running
                    current = next
                    continue
                }
                self.context = nil
                running.release()
                current.releaseAddressSpace()
                current.release()
                held = nil
                if mustExit { break }
                current = next
            }
        } catch {
            kernel.logger.error("task \(id): platform failure: \(error)")
            threadGroup?.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
        }
        setInterrupter(nil)
        // The stub thread ends before this host thread, its tracer, does.
        context?.release()
        context = nil
        if kernel.pauseGate.isDiscarded {
            // The kernel is thrown away, not exited (Kernel.discard): only the stub ends.
            held?.releaseAddressSpace()
        } else {
            exitTask(holding: held)
        }
        kernel.pauseGate.leave(self)
    }

    private func loop(_ initial: Context, kernel: Kernel, mm: MemoryManager) throws(PlatformError) {
        var context = initial
        var clockMark = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
        // A signal already pending (sent to a restored task while it was
        // parked for the checkpoint, or to a new thread before it ran) is
        // taken before the application runs, as on Linux: no kick comes to
        // say so, and a rewound syscall would block again with it pending.
        if hasDeliverableSignal { try returnToUser(context, afterSyscall: false) }
        while !mustExit, self.mm === mm {
            if kernel.pauseGate.isRequested {
                try park(context, kernel: kernel)
                if kernel.pauseGate.isDiscarded { return }
                // Time parked (a checkpoint, runsc pause) is no CPU time: the
                // clock starts again, and the park's blocked time, outside it, is dropped.
                clockMark = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
                _ = BlockedTime.take()
                continue
            }
            // A process restored stopped waits for SIGCONT before it runs.
            if threadGroup?.isStopped == true {
                try returnToUser(context, afterSyscall: false)
                clockMark = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
                _ = BlockedTime.take()
                continue
            }
            if waitForVforkChild() { continue }
            let stop = try context.switchToApp(registers: &registers)
            // Anything but a kick means the application ran past a rewound
            // syscall, or re-entered it: a syscall stop then.
            if case .interrupted = stop {} else {
                if case .syscall = stop, rewoundRestart != nil {
                    reentered = keptForRestart
                } else {
                    reentered = RestartKeep()
                    dropFutexWaits(keptForRestart.futexWaiters, kernel: kernel)
                }
                keptForRestart = RestartKeep()
                rewoundRestart = nil
            }
            let now = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            userTime += now - clockMark
            clockMark = now
            switch stop {
            case .syscall(let number):
                lastFault = nil
                let result = dispatch(number, kernel: kernel)
                settleFutexWaits(after: result, kernel: kernel)
                registers.setSyscallReturn(reentered.written.map { settleUnclaimedWrite($0, result: result) } ?? result)
            case .fault(let fault):
                handle(fault, mm: mm)
            case .interrupted:
                // Interrupts are rare (exit, checkpoint, a signal): keep the
                // Task's FP state current then, so a saved task is complete.
                floatingPoint = try context.floatingPointState()
                waiter.clearInterrupt()
            case .died(let status):
                kernel.logger.debug("task \(id): stub died: \(status)")
                threadGroup?.beginExit(.killed(signal: Signal.kill.rawValue, coreDumped: false))
            }
            // A fork may have moved the task to a fresh stub (`moveToFreshStub`).
            if let current = self.context, current !== context { context = current }
            killIfOutOfMemory(kernel)
            if threadGroup?.hasArmedCPUTimers == true { checkCPUTimers() }
            var afterSyscall = false
            if case .syscall = stop { afterSyscall = true }
            try returnToUser(context, afterSyscall: afterSyscall)
            let after = Clocks.hostNanoseconds(CLOCK_MONOTONIC)
            // A sleep in the Sentry is neither the task's user nor its system time.
            systemTime += max(0, after - clockMark - BlockedTime.take())
            clockMark = after
        }
    }

    /// fork's `MemoryManager.StubReplacement` for this task's MM: a new stub
    /// that this thread traces, running on with `floatingPoint` (the registers
    /// are the Task's anyway); `previous` is killed now and reaped in the
    /// background. Throws, changing nothing, when the new stub cannot be made.
    func moveToFreshStub(retiring previous: any AddressSpaceMapper,
                         floatingPoint: FloatingPointState) throws(SyscallError) -> any AddressSpaceMapper {
        guard let kernel, let old = previous as? PlatformAddressSpace else { throw .eagain }
        let space: AddressSpace
        do {
            space = try AddressSpace(memoryFile: kernel.memoryFile.fd)
        } catch {
            throw .eagain
        }
        do {
            let context = try Context(addressSpace: space)
            try context.setFloatingPointState(floatingPoint)
            self.context = context
            setInterrupter(context.interrupter)
        } catch {
            space.release()
            throw .eagain
        }
        old.space.releaseInBackground()
        return PlatformAddressSpace(space)
    }

    /// Rests for a checkpoint: the registers are current (this is a stop
    /// between switches, any interrupted syscall already rewound); the FP
    /// state is read from the stub so the Task is complete. Kicks that
    /// brought the task here are forgotten so the next wait is not cut short.
    func park(_ context: Context, kernel: Kernel) throws(PlatformError) {
        floatingPoint = try context.floatingPointState()
        waiter.clearInterrupt()
        kernel.pauseGate.park(self)
    }

    /// restart_syscall(2).
    static let restartSyscallNumber: UInt64 = 219

    /// Runs syscall `number`; returns rax. An interrupted call leaves its
    /// restart code there, which `returnToUser` settles as Linux does.
    func dispatch(_ number: Int, kernel: Kernel) -> Int64 {
        let arguments = SyscallArguments(registers.rdi, registers.rsi, registers.rdx,
                                         registers.r10, registers.r8, registers.r9)
        kernel.statistics.count(number)
        kernel.saveRestoreTrigger.countSyscall()
        if isSeccompFiltered, let verdict = seccompVerdict(number, arguments, kernel: kernel) {
            return verdict
        }
        guard let entry = kernel.syscalls.entry(number) else {
            if kernel.statistics.firstUnimplemented(number) {
                kernel.logger.warning("unimplemented syscall \(SyscallTable.name(of: number)) (\(number))")
            }
            return SyscallError.enosys.returnValue
        }
        do {
            return try entry.handler(self, arguments)
        } catch {
            return error.returnValue
        }
    }

    /// A fault either maps memory (lazily allocated pages) or raises its
    /// signal for the task (force_sig_fault): the handler runs if there is
    /// one, and a blocked or ignored fault signal kills.
    private func handle(_ fault: Fault, mm: MemoryManager) {
        let info: SignalInfo
        var context = FaultContext(trapNumber: 0, errorCode: 0, address: 0)
        if fault.signal == SIGSEGV && fault.code == LinuxSignal.SI_KERNEL {
            // A general protection fault (a non-canonical address, a privileged instruction).
            info = SignalInfo(signal: .segmentationFault, code: LinuxSignal.SI_KERNEL, address: 0)
            context.trapNumber = LinuxSignal.X86_TRAP_GP
        } else if fault.signal == SIGSEGV || fault.signal == SIGBUS {
            // The host's si_code says MAPERR only for a SIGSEGV (BUS_ADRALN has the same number).
            let site = (address: fault.address, instruction: registers.rip)
            repeatedFaults = lastFault.map { $0 == site } == true ? repeatedFaults + 1 : 0
            lastFault = site
            let host = fault.signal == SIGSEGV
                ? MemoryManager.HostFault(unmapped: fault.code == LinuxSignal.SEGV_MAPERR,
                                          instructionFetch: fault.address == registers.rip,
                                          retriedTooOften: repeatedFaults >= MemoryManager.HostFault.retryLimit)
                : nil
            switch mm.handleFault(at: fault.address, host: host) {
            case .mapped: return
            case .segmentationFault(let code):
                info = SignalInfo(signal: .segmentationFault, code: code, address: fault.address)
                context.errorCode = LinuxSignal.X86_PF_USER | (code == LinuxSignal.SEGV_ACCERR ? LinuxSignal.X86_PF_PROT : 0)
            case .busError:
                // A page the memory limit refused: the OOM kill, not SIGBUS.
                if let kernel, killIfOutOfMemory(kernel) { return }
                info = SignalInfo(signal: .busError, code: LinuxSignal.BUS_ADRERR, address: fault.address)
                context.errorCode = LinuxSignal.X86_PF_USER
            }
            context.trapNumber = LinuxSignal.X86_TRAP_PF
            context.address = fault.address
        } else {
            info = SignalInfo(signal: Signal(rawValue: fault.signal), code: fault.code, address: fault.address)
        }
        kernel?.logger.debug("task \(id): \(info.signal.rawValue) at \(String(fault.address, radix: 16)), rip \(String(registers.rip, radix: 16))")
        faultContext = context
        forceSignal(info)
    }

    /// After a syscall or a fault that needed a page the container's memory
    /// limit refused: the process is killed with SIGKILL, as Linux's memory
    /// cgroup OOM killer does to a process of the cgroup (here the one that
    /// asked; a container has one process until fork exists).
    @discardableResult
    private func killIfOutOfMemory(_ kernel: Kernel) -> Bool {
        guard kernel.memoryFile.takeChargeFailure() else { return false }
        kernel.logger.info("task \(id): out of memory (limit \(kernel.memoryFile.limit) bytes): killed")
        threadGroup?.beginExit(killedBy: .kill)
        return true
    }

    /// The thread is done: it leaves its group and drops its reference to
    /// `held`'s address space; the last one out releases the process's memory
    /// and reports the exit.
    private func exitTask(holding held: MemoryManager?) {
        guard let group = threadGroup, let kernel else { return }
        releaseRobustList()
        // mm_release: the TID word is zeroed and its (shared) futex woken,
        // which is how pthread_join learns the thread is gone.
        if clearChildTID != 0, mm != nil, group.members.count > 1 {
            if (try? copyOut(value: UInt32(0), to: clearChildTID)) != nil,
               let word = try? FutexWord(self, clearChildTID, shared: true) {
                _ = try? kernel.futexes.wake(word.key, count: 1)
            }
        }
        endVfork()
        dropFutexWaits(keptForRestart.futexWaiters + reentered.futexWaiters, kernel: kernel)
        kernel.pidNamespace.release(taskID: id)
        // After the release: a LOCK_PI that still found this owner is queued.
        kernel.futexes.releasePILocks(ownedBy: id)
        let last = group.remove(self, exitCode: exitCode ?? 0, killedBy: exitSignal)
        group.lock.withLock { _ in group.execingTask }?.waiter.notify()
        guard last else {
            held?.releaseAddressSpace()
            fdTable.removeUser()
            return
        }
        mm?.syncAll()
        fdTable.removeUser()
        kernel.semaphores.processExited(group.id)
        if let reason = group.exitStatus { kernel.threadGroupFinished(group, reason) }
        // Ending the stub (its exit unmaps the whole address space: 30 ms
        // for 1 GiB) and freeing the pages (a hole punched per run) are
        // invisible outside, so they come after the exit is reported.
        held?.releaseAddressSpace()
        mm?.release()
    }
}

/// The platform's address space as the MM's mapper: errors become EFAULT-ish
/// SyscallErrors (a fault handler turns them into SIGBUS). Public for the
/// benchmarks, which drive an MM with a real stub.
public final class PlatformAddressSpace: AddressSpaceMapper {
    let space: AddressSpace

    public init(_ space: AddressSpace) {
        self.space = space
    }

    /// The stub is emptied and kept for another address space (`AddressSpace.recycle`).
    public func release() {
        space.recycle()
    }

    public func map(address: UInt64, length: UInt64, fileOffset: UInt64, protection: Protection) throws(SyscallError) {
        do {
            try space.map(address: address, length: length, fileOffset: fileOffset,
                          protection: AddressSpace.Protection(rawValue: Int32(protection.rawValue)))
        } catch {
            throw SyscallError.fromHost(error.errno)
        }
    }

    public func unmap(address: UInt64, length: UInt64) throws(SyscallError) {
        do {
            try space.unmap(address: address, length: length)
        } catch {
            throw SyscallError.fromHost(error.errno)
        }
    }

    public func unmapAll() throws(SyscallError) {
        do {
            try space.unmapAll()
        } catch {
            throw SyscallError.fromHost(error.errno)
        }
    }

    public func protect(address: UInt64, length: UInt64, protection: Protection) throws(SyscallError) {
        do {
            try space.protect(address: address, length: length,
                              protection: AddressSpace.Protection(rawValue: Int32(protection.rawValue)))
        } catch {
            throw SyscallError.fromHost(error.errno)
        }
    }

    /// Several changes in one stop of the stub (`AddressSpace.apply`).
    public func apply(_ changes: [StubChange]) -> (applied: Int, failure: SyscallError?) {
        let platform = changes.map { change -> AddressSpace.Change in
            switch change {
            case .map(let address, let length, let fileOffset, let protection):
                .map(address: address, length: length, fileOffset: fileOffset,
                     protection: AddressSpace.Protection(rawValue: Int32(truncatingIfNeeded: protection.rawValue)))
            case .protect(let address, let length, let protection):
                .protect(address: address, length: length,
                         protection: AddressSpace.Protection(rawValue: Int32(truncatingIfNeeded: protection.rawValue)))
            }
        }
        let (applied, failure) = space.apply(platform)
        return (applied, failure.map { SyscallError.fromHost($0.errno) })
    }
}

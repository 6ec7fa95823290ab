import Platform

/// What fork, vfork, clone and clone3 ask for (Linux's kernel_clone_args).
struct CloneRequest {
    var flags: UInt64
    /// Sent to the parent at the child's exit; 0 for none.
    var exitSignal: Signal
    /// The child's stack pointer; 0 keeps the parent's.
    var stack: UInt64 = 0
    var parentTID: UInt64 = 0
    var childTID: UInt64 = 0
    var tls: UInt64 = 0
    /// Where CLONE_PIDFD stores the child's pidfd (clone(2)'s parent_tid, clone3's pidfd).
    var pidfd: UInt64 = 0
}

/// Process and thread creation (copy_process). An address space shared
/// by two processes outside vfork (CLONE_VM without CLONE_THREAD) answers
/// ENOSYS.
extension Task {
    /// Creates the child process and starts it; returns its PID. The child
    /// has a copy of the memory, the descriptors (sharing their open file
    /// descriptions), the fs context (shared with CLONE_FS), the handlers,
    /// mask, limits and alternate stack, no pending signals, and returns 0.
    /// With CLONE_VFORK the parent does not go back to the application
    /// before the child execs or exits (`waitForVforkChild`).
    func clone(_ request: CloneRequest) throws(SyscallError) -> Int32 {
        let flags = request.flags
        // kernel_clone: the pidfd and the parent's TID cannot share a word.
        if flags & LinuxProcess.CLONE_PIDFD != 0 && flags & LinuxProcess.CLONE_PARENT_SETTID != 0
            && request.pidfd == request.parentTID { throw .einval }
        try Task.checkCloneFlags(flags, isInit: threadGroup != nil && threadGroup === kernel?.initThreadGroup)
        guard let kernel, let group = threadGroup, let mm else { throw .einval }
        if flags & LinuxProcess.CLONE_SETTLS != 0, request.tls >= MemoryManager.maxAddress { throw .eperm }
        // A process being killed makes no children (fatal_signal_pending).
        if mustExit { throw .erestartnointr }
        if flags & LinuxProcess.CLONE_THREAD != 0 { return try cloneThread(request, kernel: kernel, group: group, mm: mm) }
        // A descriptor table shared between processes needs a count of its
        // users (the child's exit or exec must not close the parent's FDs):
        // not built, so refused as before rather than shared unsafely.
        if flags & LinuxProcess.CLONE_FILES != 0 { throw .enosys }
        let floatingPoint = try currentFloatingPoint()
        // A vfork child execs at once: its parent keeps its stub (taking write
        // back in one call per range once alone) instead of refaulting all.
        var movedToFreshStub = false
        let replaceStub: MemoryManager.StubReplacement? = flags & LinuxProcess.CLONE_VFORK != 0 ? nil : { previous throws(SyscallError) in
            let fresh = try self.moveToFreshStub(retiring: previous, floatingPoint: floatingPoint)
            movedToFreshStub = true
            return fresh
        }
        let childMM = try mm.fork(replaceStub: replaceStub)
        // The parent writes its stack on its way back from fork: its own copy
        // now, before the child starts, leaves the child that page alone.
        // A vfork parent waits for the child's exec or exit instead.
        if movedToFreshStub {
            mm.prefaultFreshStubAfterFork(instruction: registers.rip, stack: registers.rsp)
        } else if flags & LinuxProcess.CLONE_VFORK == 0 {
            mm.prefaultForWrite([registers.rsp])
        }
        var childRegisters = registers
        childRegisters.rax = 0
        if request.stack != 0 { childRegisters.rsp = request.stack }
        if flags & LinuxProcess.CLONE_SETTLS != 0 { childRegisters.fsBase = request.tls }
        let child: Task
        do {
            child = try kernel.createProcess(mm: childMM, credentials: credentials, limits: group.limits,
                                             registers: childRegisters, name: name)
        } catch {
            childMM.release()
            throw error
        }
        guard let childGroup = child.threadGroup else { throw .eagain }
        childGroup.signalHandlers = flags & LinuxProcess.CLONE_SIGHAND != 0 ? group.signalHandlers : group.signalHandlers.copy()
        if flags & LinuxProcess.CLONE_CLEAR_SIGHAND != 0 { childGroup.signalHandlers.resetForExec() }
        childGroup.inheritJobControl(from: group)
        childGroup.oomScoreAdjustment = group.oomScoreAdjustment
        child.floatingPoint = floatingPoint
        child.signalMask = signalMask
        child.alternateSignalStack = alternateSignalStack
        child.fdTable = fdTable.fork()
        child.fsContext = flags & LinuxProcess.CLONE_FS != 0 ? fsContext : fsContext.fork()
        inheritControls(by: child)
        if flags & LinuxProcess.CLONE_CHILD_CLEARTID != 0 { child.clearChildTID = request.childTID }
        // Written in the child's memory (schedule_tail); a bad address is ignored, as Linux does.
        if flags & LinuxProcess.CLONE_CHILD_SETTID != 0 {
            try? childMM.copyOut(withUnsafeBytes(of: child.id) { Array($0) }, to: request.childTID)
        }
        // CLONE_PIDFD: made after the child's table was copied, so the child has no copy;
        // a bad address undoes the clone (EFAULT), as copy_process's put_user does.
        var pidfd: Int32?
        if flags & LinuxProcess.CLONE_PIDFD != 0 {
            do {
                let fd = try PidFDSyscalls.install(PidFile(target: childGroup, flags: 0), in: self)
                pidfd = fd
                try copyOut(value: fd, to: request.pidfd)
            } catch {
                if let pidfd { try? fdTable.remove(pidfd) }
                child.abandonUnstarted()
                throw error
            }
        }
        kernel.processTree.withLock { _ in
            // CLONE_PARENT: a sibling, which the grandparent is told about as this process would be.
            let parent = flags & LinuxProcess.CLONE_PARENT != 0 ? group.parent : group
            childGroup.exitSignal = flags & LinuxProcess.CLONE_PARENT != 0 ? group.exitSignal : request.exitSignal
            childGroup.parent = parent
            parent?.children.append(childGroup)
            if flags & LinuxProcess.CLONE_VFORK != 0 {
                child.vforkParent = self
                vforkChild = child
                mayHaveVforkChild = true
            }
        }
        if flags & LinuxProcess.CLONE_PARENT_SETTID != 0 { try? copyOut(value: child.id, to: request.parentTID) }
        do {
            try child.start()
        } catch {
            if let pidfd { try? fdTable.remove(pidfd) }
            child.abandonUnstarted()
            throw error
        }
        return child.id
    }

    /// copy_process's checks of the flags, in its order, then what this
    /// kernel does not do yet.
    static func checkCloneFlags(_ flags: UInt64, isInit: Bool) throws(SyscallError) {
        let both = { (a: UInt64, b: UInt64) in flags & (a | b) == a | b }
        if both(LinuxProcess.CLONE_NEWNS, LinuxProcess.CLONE_FS) { throw .einval }
        if both(LinuxProcess.CLONE_NEWUSER, LinuxProcess.CLONE_FS) { throw .einval }
        if flags & LinuxProcess.CLONE_THREAD != 0 && flags & LinuxProcess.CLONE_SIGHAND == 0 { throw .einval }
        if flags & LinuxProcess.CLONE_SIGHAND != 0 && flags & LinuxProcess.CLONE_VM == 0 { throw .einval }
        // Init cannot make siblings (SIGNAL_UNKILLABLE).
        if flags & LinuxProcess.CLONE_PARENT != 0 && isInit { throw .einval }
        // pidfds name processes here, not threads (no PIDFD_THREAD); CLONE_DETACHED is kept for pidfds' future.
        if flags & LinuxProcess.CLONE_PIDFD != 0 && flags & (LinuxProcess.CLONE_THREAD | LinuxProcess.CLONE_DETACHED) != 0 {
            throw .einval
        }
        // No namespaces can be made in the container.
        if flags & (LinuxProcess.namespaceFlags | LinuxProcess.CLONE_NEWTIME) != 0 { throw .einval }
        // Memory shared between two processes is vfork's only.
        if flags & LinuxProcess.CLONE_VM != 0 && flags & (LinuxProcess.CLONE_VFORK | LinuxProcess.CLONE_THREAD) == 0 {
            throw .enosys
        }
    }

    /// A new thread in this task's process (CLONE_THREAD, with CLONE_VM and
    /// CLONE_SIGHAND as the checks require): it shares the MM, the handlers
    /// and, as asked, the descriptors and fs context; it gets the caller's
    /// mask, no pending signals, no alternate stack (copy_process clears it
    /// for a shared VM), and runs on its own host thread and stub thread.
    private func cloneThread(_ request: CloneRequest, kernel: Kernel, group: ThreadGroup,
                             mm: MemoryManager) throws(SyscallError) -> Int32 {
        let flags = request.flags
        if group.isExiting { throw .erestartnointr }
        let child = try Task(kernel: kernel, group: group, mm: mm, credentials: credentials)
        child.registers = registers
        child.registers.rax = 0
        if request.stack != 0 { child.registers.rsp = request.stack }
        if flags & LinuxProcess.CLONE_SETTLS != 0 { child.registers.fsBase = request.tls }
        do {
            child.floatingPoint = try currentFloatingPoint()
        } catch {
            kernel.pidNamespace.release(taskID: child.id)
            throw error
        }
        child.name = name
        child.signalMask = signalMask
        if flags & LinuxProcess.CLONE_FILES != 0 {
            fdTable.addUser()
            child.fdTable = fdTable
        } else {
            child.fdTable = fdTable.fork()
        }
        child.fsContext = flags & LinuxProcess.CLONE_FS != 0 ? fsContext : fsContext.fork()
        inheritControls(by: child)
        if flags & LinuxProcess.CLONE_CHILD_CLEARTID != 0 { child.clearChildTID = request.childTID }
        if flags & LinuxProcess.CLONE_CHILD_SETTID != 0 { try? child.copyOut(value: child.id, to: request.childTID) }
        if flags & LinuxProcess.CLONE_PARENT_SETTID != 0 { try? copyOut(value: child.id, to: request.parentTID) }
        guard group.addThread(child) else {
            kernel.pidNamespace.release(taskID: child.id)
            child.fdTable.removeUser()
            throw .erestartnointr
        }
        do {
            try child.start()
        } catch {
            _ = group.remove(child, exitCode: 0)
            kernel.pidNamespace.release(taskID: child.id)
            child.fdTable.removeUser()
            throw error
        }
        return child.id
    }

    /// The FP state of the stub thread now (the Task's copy is current only at interrupts).
    private func currentFloatingPoint() throws(SyscallError) -> FloatingPointState {
        guard let context else { return floatingPoint }
        do {
            return try context.floatingPointState()
        } catch {
            throw .eagain
        }
    }

    /// A child whose thread could not start: it leaves the tree and its
    /// resources go, as if it had never been made.
    private func abandonUnstarted() {
        guard let kernel, let group = threadGroup else { return }
        kernel.processTree.withLock { _ in
            group.parent?.children.removeAll { $0 === group }
            group.parent = nil
            if let parent = vforkParent, parent.vforkChild === self { parent.vforkChild = nil }
            vforkParent = nil
        }
        kernel.pidNamespace.release(taskID: id)
        kernel.pidNamespace.release(groupID: group.id)
        fdTable.removeUser()
        mm?.release()
    }

    /// The vfork link ends (the child execs or exits, or either side exits):
    /// the parent goes back to the application.
    func endVfork() {
        guard let kernel else { return }
        let parent = kernel.processTree.withLock { _ -> Task? in
            if let child = vforkChild, child.vforkParent === self { child.vforkParent = nil }
            vforkChild = nil
            guard let parent = vforkParent else { return nil }
            vforkParent = nil
            if parent.vforkChild === self { parent.vforkChild = nil }
            return parent
        }
        parent?.waiter.notify()
    }

    /// The vfork parent's wait before it returns to the application: one
    /// sleep, ended by the child's exec or exit, a checkpoint or an exit
    /// (other signals wait, as Linux's killable wait_for_vfork_done);
    /// returns whether the task waited, so the run loop looks again.
    func waitForVforkChild() -> Bool {
        guard mayHaveVforkChild, let kernel else { return false }
        // Other signals wait: their interrupts are forgotten, the signals stay pending.
        waiter.reset()
        waiter.clearInterrupt()
        guard kernel.processTree.withLock({ _ in vforkChild != nil }) else {
            mayHaveVforkChild = false
            return false
        }
        if !mustExit, !kernel.pauseGate.isRequested { _ = try? waiter.block() }
        return true
    }
}

extension Task {
    /// What a new thread or process takes over as it is: prctl's controls
    /// (but the parent-death signal), the seccomp filters, the scheduling
    /// attributes (reset by SCHED_RESET_ON_FORK).
    func inheritControls(by child: Task) {
        child.controls = controls
        child.controls.parentDeathSignal = 0
        child.seccomp = seccomp
        child.seccompPrograms = seccompPrograms
        child.scheduling = scheduling.forChild()
    }
}

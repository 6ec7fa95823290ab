/// fork(2)'s address space: the child's MM is a copy of the parent's.
extension MemoryManager {
    /// A new MM with this one's mappings and layout, for a forked child (not
    /// yet running: it has no address space). Shared mappings share their
    /// pages with this MM; private pages are the child's own, with this MM's
    /// contents at the time of the call. Called on the forking task's thread.
    public func fork() throws(SyscallError) -> MemoryManager {
        guard let memoryFile else { throw .enomem }
        let child = MemoryManager(memoryFile: memoryFile)
        try lock.withLock { _ throws(SyscallError) in
            var copied: [PrivatePages] = []
            copied.reserveCapacity(privatePages.count)
            do throws(SyscallError) {
                for run in privatePages {
                    let length = run.end - run.start
                    let offset = try memoryFile.allocate(length)
                    copied.append(PrivatePages(start: run.start, end: run.end, offset: offset))
                    guard let source = memoryFile.pointer(at: run.offset, count: length),
                          let destination = memoryFile.pointer(at: offset, count: length) else { throw SyscallError.enomem }
                    destination.copyMemory(from: source, byteCount: Int(length))
                }
            } catch {
                for run in copied { memoryFile.free(offset: run.offset, length: run.end - run.start) }
                throw error
            }
            var anonymousShared: [SharedMemory] = []
            for vma in vmas {
                if let memory = vma.sharedMemory, vma.isAnonymous, !anonymousShared.contains(where: { $0 === memory }) {
                    anonymousShared.append(memory)
                }
            }
            for memory in anonymousShared { memory.retainMapping() }
            child.vmas = vmas
            child.privatePages = copied
            child.mmapBase = mmapBase
            child.brkStart = brkStart
            child.brk = brk
            child.stackTop = stackTop
            child.argvRange = argvRange
            child.envRange = envRange
            child.auxv = auxv
            child.executablePath = executablePath
        }
        return child
    }
}

/// memfd_create(2) and fcntl's F_ADD_SEALS/F_GET_SEALS (mm/memfd.c); the
/// files are VFS/tmpfs/Memfd.swift's.
enum MemfdSyscalls {
    /// memfd_create, in Linux's order: EINVAL for unknown flags or both
    /// MFD_EXEC and MFD_NOEXEC_SEAL, EFAULT or EINVAL (longer than
    /// MFD_NAME_MAX_LEN) for the name, then EMFILE.
    static func memfdCreate(_ task: Task, _ args: SyscallArguments) throws(SyscallError) -> Int64 {
        let flags = args.uint(1)
        let known = MemfdABI.MFD_CLOEXEC | MemfdABI.MFD_ALLOW_SEALING | MemfdABI.MFD_NOEXEC_SEAL | MemfdABI.MFD_EXEC
        guard flags & ~known == 0 else { throw .einval }
        let noExecute = flags & MemfdABI.MFD_NOEXEC_SEAL != 0
        if noExecute, flags & MemfdABI.MFD_EXEC != 0 { throw .einval }
        let name: String
        do {
            name = try task.copyInString(from: args.pointer(0), maxLength: MemfdABI.nameMaximum)
        } catch .enametoolong {
            throw .einval
        }
        guard let kernel = task.kernel, let vfs = kernel.vfs else { throw .enomem }
        let file = try vfs.makeMemfd(name: name, allowSealing: flags & MemfdABI.MFD_ALLOW_SEALING != 0,
                                     noExecute: noExecute, credentials: task.fileCredentials,
                                     memoryFile: kernel.memoryFile)
        return Int64(try task.fdTable.install(file, closeOnExec: flags & MemfdABI.MFD_CLOEXEC != 0,
                                              limit: task.fileDescriptorLimit))
    }

    /// memfd_fcntl: F_ADD_SEALS is EPERM unless open for writing, EINVAL
    /// for unknown seals or a file that is not tmpfs's, EPERM once sealed
    /// against sealing, EBUSY for F_SEAL_WRITE while a shared mapping that
    /// may be written maps the file (mapping_deny_writable); F_GET_SEALS is
    /// EINVAL for a file not tmpfs's.
    static func seals(_ task: Task, _ file: FileDescription, command: Int32, argument: UInt32)
        throws(SyscallError) -> Int64 {
        let inode = file.inode as? TmpfsRegularFile
        if command == MemfdABI.F_GET_SEALS {
            guard let inode else { throw .einval }
            return Int64(inode.currentSeals)
        }
        guard file.isWritable else { throw .eperm }
        guard argument & ~MemfdABI.allSeals == 0, let inode else { throw .einval }
        // The mapping lock keeps a shared writable mmap from landing between the walk and the seal.
        try inode.mappingLock.withLock { _ throws(SyscallError) in
            let seals = inode.currentSeals
            if seals & MemfdABI.F_SEAL_SEAL != 0 { throw .eperm }
            if argument & MemfdABI.F_SEAL_WRITE != 0, seals & MemfdABI.F_SEAL_WRITE == 0,
               let contents = inode.mappedContents, task.kernel?.mapsSharedWritable(contents) ?? false {
                throw .ebusy
            }
            try inode.addSeals(argument)
        }
        return 0
    }
}

extension Kernel {
    /// Whether any address space of the container maps `contents` shared
    /// and writable (i_mmap_writable > 0). Sealing is rare, so the MMs are
    /// walked, each under its own lock, rather than counted at every mmap.
    func mapsSharedWritable(_ contents: SharedMemory) -> Bool {
        var seen = Set<ObjectIdentifier>()
        for task in pidNamespace.allTasks {
            guard let mm = task.mm, seen.insert(ObjectIdentifier(mm)).inserted else { continue }
            if mm.mapsSharedWritable(contents) { return true }
        }
        return false
    }
}

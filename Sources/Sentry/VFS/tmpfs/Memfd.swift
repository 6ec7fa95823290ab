/// memfd_create's files (mm/memfd.c) and SysV shared memory segments'
/// (ipc/shm.c): tmpfs regular files on an internal tmpfs outside the mount
/// tree (Linux's shm_mnt), named "memfd:NAME" or "SYSVkey" by a dentry that
/// no directory lists, so /proc/self/fd and /proc/self/maps show
/// "/memfd:NAME (deleted)". Their data is MemoryFile pages like any tmpfs
/// file's, so MAP_SHARED mappings and write(2) see one copy, and a
/// checkpoint saves it with the rest of memory.
extension VirtualFilesystem {
    /// A new memfd's open description (O_RDWR), with F_SEAL_SEAL unless
    /// `allowSealing`; `noExecute` (MFD_NOEXEC_SEAL) drops the execute bits
    /// and seals them (F_SEAL_EXEC), leaving further sealing allowed.
    func makeMemfd(name: String, allowSealing: Bool, noExecute: Bool, credentials: FileCredentials,
                   memoryFile: MemoryFile) throws(SyscallError) -> FileDescription {
        let permissions: UInt32 = noExecute ? 0o666 : 0o777
        let (inode, location) = try makeInternalFile(name: MemfdABI.namePrefix + name, permissions: permissions,
                                                     uid: credentials.uid, gid: credentials.gid, memoryFile: memoryFile)
        if noExecute {
            inode.setSeals(MemfdABI.F_SEAL_EXEC)
        } else if allowSealing {
            inode.setSeals(0)
        }
        return try inode.open(at: location, flags: LinuxFile.readWrite)
    }

    /// A SysV shared memory segment's file, as Linux's shm_file: named
    /// "SYSV" and the key in hex, `size` bytes, opened read-write.
    func makeSysVShmFile(key: Int32, size: UInt64, uid: UInt32, gid: UInt32,
                         memoryFile: MemoryFile) throws(SyscallError) -> FileDescription {
        let name = String(UInt32(bitPattern: key), radix: 16)
        let (inode, location) = try makeInternalFile(name: "SYSV" + String(repeating: "0", count: 8 - name.count) + name,
                                                     permissions: 0o600, uid: uid, gid: gid, memoryFile: memoryFile)
        guard size <= UInt64(Int64.max) else { throw .einval }
        try inode.setAttributes(AttributeChange(size: Int64(size)))
        return try inode.open(at: location, flags: LinuxFile.readWrite)
    }

    /// A new file on the internal tmpfs, deleted from the start.
    private func makeInternalFile(name: String, permissions: UInt32, uid: UInt32, gid: UInt32,
                                  memoryFile: MemoryFile) throws(SyscallError) -> (TmpfsRegularFile, VirtualPath) {
        let mount = try shmMount(memoryFile: memoryFile)
        let inode = TmpfsRegularFile()
        inode.initialize(filesystem: mount.filesystem, mode: FileType.regular.rawValue | permissions, uid: uid, gid: gid)
        let dentry = Dentry(name: name, parent: mount.root, inode: inode)
        dentry.isDeleted = true
        return (inode, VirtualPath(mount: mount, dentry: dentry))
    }

    /// The internal tmpfs, made by the first memfd_create.
    private func shmMount(memoryFile: MemoryFile) throws(SyscallError) -> Mount {
        if let existing = VFSLock.shared.withLock({ _ in memfdMount }) { return existing }
        let filesystem = TmpfsFilesystem.make(deviceNumber: allocateDeviceNumber())
        try filesystem.attach(memoryFile: memoryFile)
        let made = Mount(filesystem: filesystem, parent: nil, mountpoint: nil, target: "/", readOnly: false)
        return VFSLock.shared.withLock { _ in
            if let memfdMount { return memfdMount }
            memfdMount = made
            return made
        }
    }
}

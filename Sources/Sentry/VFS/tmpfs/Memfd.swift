/// memfd_create's files (mm/memfd.c): tmpfs regular files on an internal
/// tmpfs outside the mount tree (Linux's shm_mnt), named "memfd:NAME" by a
/// dentry that no directory lists, so /proc/self/fd and /proc/self/maps show
/// "/memfd:NAME (deleted)". Their data is MemoryFile pages like any tmpfs
/// file's, so MAP_SHARED mappings and write(2) see one copy, and a
/// checkpoint saves it with the rest of memory.
extension VirtualFilesystem {
    /// A new memfd's open description (O_RDWR), with F_SEAL_SEAL unless
    /// `allowSealing`; `noExecute` (MFD_NOEXEC_SEAL) drops the execute bits
    /// and seals them (F_SEAL_EXEC), leaving further sealing allowed.
    func makeMemfd(name: String, allowSealing: Bool, noExecute: Bool, credentials: FileCredentials,
                   memoryFile: MemoryFile) throws(SyscallError) -> FileDescription {
        let mount = try shmMount(memoryFile: memoryFile)
        let inode = TmpfsRegularFile()
        let permissions: UInt32 = noExecute ? 0o666 : 0o777
        inode.initialize(filesystem: mount.filesystem, mode: FileType.regular.rawValue | permissions,
                         uid: credentials.uid, gid: credentials.gid)
        if noExecute {
            inode.setSeals(MemfdABI.F_SEAL_EXEC)
        } else if allowSealing {
            inode.setSeals(0)
        }
        let dentry = Dentry(name: MemfdABI.namePrefix + name, parent: mount.root, inode: inode)
        dentry.isDeleted = true
        return try inode.open(at: VirtualPath(mount: mount, dentry: dentry), flags: LinuxFile.readWrite)
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

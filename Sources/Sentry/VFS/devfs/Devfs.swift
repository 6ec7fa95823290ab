/// The container's /dev: a tmpfs holding the standard character devices and
/// the conventional symlinks into /proc/self/fd, as runsc's devtmpfs.
public enum Devfs {
    public static func make(deviceNumber: UInt64, terminal: Bool) throws(SyscallError) -> TmpfsFilesystem {
        let filesystem = TmpfsFilesystem.make(deviceNumber: deviceNumber, rootMode: 0o755)
        let root = filesystem.root
        guard let directory = root.inode as? TmpfsDirectory else { throw .eio }
        var kinds: [DeviceKind] = [.null, .zero, .full, .random, .urandom]
        if terminal { kinds.append(.tty) }
        for kind in kinds {
            let inode = DeviceInode()
            inode.kind = kind
            _ = try directory.addNode(inode, name: kind.rawValue, in: root,
                                      mode: FileType.characterDevice.rawValue | 0o666, credentials: .root)
        }
        let links = [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                     ("stderr", "/proc/self/fd/2")]
        for (name, target) in links {
            _ = try directory.makeSymlink(name, in: root, target: target, credentials: .root)
        }
        _ = try directory.makeDirectory("shm", in: root, mode: FileType.directory.rawValue | 0o1777,
                                        credentials: .root)
        return filesystem
    }
}

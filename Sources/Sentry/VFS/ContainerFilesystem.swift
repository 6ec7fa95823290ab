import Glibc

/// A mount the spec asks for, in the Sentry's terms (the Loader converts
/// the OCI spec's mounts; the Sentry does not depend on OCI).
public struct ContainerMount: Sendable {
    public enum Kind: Sendable {
        /// A tmpfs; `size` in bytes and `inodes` bound it (nil: no bound).
        case tmpfs(mode: UInt32, size: UInt64? = nil, inodes: UInt64? = nil)
        /// A host directory or file (bind mount), read-only or not.
        case host(path: String)
        case proc, devfs, sysfs
    }

    public var destination: String
    public var kind: Kind
    public var readOnly: Bool
    /// MS_NOSUID, MS_NODEV, MS_NOEXEC from the spec's options (`flags(options:)`).
    public var flags: UInt64

    public init(destination: String, kind: Kind, readOnly: Bool = false, flags: UInt64 = 0) {
        self.destination = destination
        self.kind = kind
        self.readOnly = readOnly
        self.flags = flags
    }

    /// The mount flags the spec's `nosuid`, `nodev` and `noexec` options ask for.
    public static func flags(options: [String]) -> UInt64 {
        var flags: UInt64 = 0
        if options.contains("nosuid") { flags |= ProcMountTable.noSetUIDFlag }
        if options.contains("nodev") { flags |= ProcMountTable.noDevicesFlag }
        if options.contains("noexec") { flags |= ProcMountTable.noExecFlag }
        return flags
    }
}

extension VirtualFilesystem {
    /// The container's tree as runsc builds it: hostfs over the rootfs at /,
    /// devfs at /dev, procfs at /proc, then the spec's other mounts in order.
    /// Nothing else: as runc, /tmp is the rootfs's unless the spec mounts a tmpfs there.
    public static func makeContainerTree(rootfs: String, readOnly: Bool, terminal: Bool,
                                         mounts: [ContainerMount] = [],
                                         proc: ProcSource? = nil) throws -> VirtualFilesystem {
        let vfs = VirtualFilesystem()
        let root = try HostFilesystem.make(hostPath: rootfs, readOnly: readOnly,
                                           deviceNumber: vfs.allocateDeviceNumber())
        vfs.mountRoot(root, readOnly: readOnly)
        var all = mounts
        if !all.contains(where: { normalized($0.destination) == "/dev" }) {
            all.insert(ContainerMount(destination: "/dev", kind: .devfs), at: 0)
        }
        if !all.contains(where: { normalized($0.destination) == "/proc" }) {
            all.insert(ContainerMount(destination: "/proc", kind: .proc), at: 1)
        }
        for mount in all {
            do throws(SyscallError) {
                try vfs.mount(mount, terminal: terminal, proc: proc)
            } catch {
                throw ContainerMountError(mount: mount, error: error)
            }
        }
        return vfs
    }

    /// Builds one of the spec's mounts and mounts it.
    private func mount(_ mount: ContainerMount, terminal: Bool, proc: ProcSource?) throws(SyscallError) {
        let filesystem: Filesystem
        var root: Dentry?
        switch mount.kind {
        case .tmpfs(let mode, let size, let inodes):
            filesystem = TmpfsFilesystem.make(deviceNumber: allocateDeviceNumber(), rootMode: mode,
                                              sizeLimit: size, inodeLimit: inodes)
        case .host(let path):
            if try Host.statAt(AT_FDCWD, path, flags: 0).st_mode & S_IFMT == S_IFDIR {
                filesystem = try HostFilesystem.make(hostPath: path, readOnly: mount.readOnly,
                                                     deviceNumber: allocateDeviceNumber())
            } else {
                (filesystem, root) = try HostFilesystem.makeSingleFile(
                    hostPath: path, readOnly: mount.readOnly, deviceNumber: allocateDeviceNumber())
            }
        case .devfs:
            filesystem = try Devfs.make(deviceNumber: allocateDeviceNumber(), terminal: terminal)
        case .proc:
            let procfs = ProcFilesystem.make(deviceNumber: allocateDeviceNumber())
            procfs.source = proc
            filesystem = procfs
        case .sysfs:
            filesystem = SysfsFilesystem.make(deviceNumber: allocateDeviceNumber())
        }
        try self.mount(filesystem, at: Self.normalized(mount.destination), root: root, readOnly: mount.readOnly,
                       flags: mount.flags)
    }

    private static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").joined(separator: "/")
    }

    /// Each mount's path and kind ("bind" for a host directory, else its
    /// filesystem type), for comparing an image's tree with a bundle's.
    public var mountTable: [(target: String, kind: String)] {
        VFSLock.shared.withLock { _ in
            mounts.map { mount in
                switch mount.filesystem {
                case is HostFilesystem: (mount.target, "bind")
                case is ProcFilesystem: (mount.target, "proc")
                case is SysfsFilesystem: (mount.target, "sysfs")
                default: (mount.target, "tmpfs")
                }
            }
        }
    }

    /// The procfs mounted in this tree, to attach the kernel after a restore.
    public var procFilesystems: [ProcFilesystem] {
        VFSLock.shared.withLock { _ in mounts.compactMap { $0.filesystem as? ProcFilesystem } }
    }
}

/// One of the spec's mounts could not be made: says which, and why.
public struct ContainerMountError: Error, CustomStringConvertible {
    public let mount: ContainerMount
    public let error: SyscallError

    public var description: String {
        var source = ""
        if case .host(let path) = mount.kind { source = " from \(path)" }
        return "mount at \(mount.destination)\(source): \(String(cString: strerror(error.rawValue)))"
    }
}

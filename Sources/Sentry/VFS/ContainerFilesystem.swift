/// A mount the spec asks for, in the Sentry's terms (the Loader converts
/// the OCI spec's mounts; the Sentry does not depend on OCI).
public struct ContainerMount: Sendable {
    public enum Kind: Sendable {
        case tmpfs(mode: UInt32)
        /// A host directory (bind mount), read-only or not.
        case host(path: String)
        case proc, devfs, sysfsPlaceholder
    }

    public var destination: String
    public var kind: Kind
    public var readOnly: Bool

    public init(destination: String, kind: Kind, readOnly: Bool = false) {
        self.destination = destination
        self.kind = kind
        self.readOnly = readOnly
    }
}

extension VirtualFilesystem {
    /// The container's tree as runsc builds it: hostfs over the rootfs at /,
    /// devfs at /dev, procfs at /proc, a tmpfs at /tmp unless the spec mounts
    /// something there, then the spec's other mounts in order.
    public static func makeContainerTree(rootfs: String, readOnly: Bool, terminal: Bool,
                                         mounts: [ContainerMount] = [],
                                         proc: ProcSource? = nil) throws(SyscallError) -> VirtualFilesystem {
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
        if !all.contains(where: { normalized($0.destination) == "/tmp" }) {
            all.append(ContainerMount(destination: "/tmp", kind: .tmpfs(mode: 0o1777)))
        }
        for mount in all {
            let filesystem: Filesystem
            switch mount.kind {
            case .tmpfs(let mode):
                filesystem = TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber(), rootMode: mode)
            case .host(let path):
                filesystem = try HostFilesystem.make(hostPath: path, readOnly: mount.readOnly,
                                                     deviceNumber: vfs.allocateDeviceNumber())
            case .devfs:
                filesystem = try Devfs.make(deviceNumber: vfs.allocateDeviceNumber(), terminal: terminal)
            case .proc:
                let procfs = ProcFilesystem.make(deviceNumber: vfs.allocateDeviceNumber())
                procfs.source = proc
                filesystem = procfs
            case .sysfsPlaceholder:
                filesystem = TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber(), rootMode: 0o555)
            }
            try vfs.mount(filesystem, at: normalized(mount.destination), readOnly: mount.readOnly)
        }
        return vfs
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

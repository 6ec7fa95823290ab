import State

/// Every savable type of the VFS, pipes and the filesystems, for the kernel's
/// StateRegistry: `VFSStateTypes.register(in: &registry)`.
public enum VFSStateTypes {
    public static let all: [any Savable.Type] = [
        VirtualFilesystem.self, Mount.self, Dentry.self, Inode.self, Filesystem.self, SyntheticDirectory.self,
        SyntheticFile.self,
        FileDescription.self, DirectoryFile.self, PathFile.self, FDTable.self, FSContext.self,
        TmpfsFilesystem.self, TmpfsDirectory.self, TmpfsRegularFile.self, TmpfsSymlink.self, TmpfsFile.self,
        DeviceInode.self, DeviceFile.self, ProcFilesystem.self, ProcNode.self, ProcDataFile.self, SysfsFilesystem.self, SysfsNode.self,
        NamespaceFilesystem.self, NamespaceInode.self,
        HostStdioFile.self, HostStdioReopening.self, HostTerminal.self, HostFilesystem.self, HostInode.self, HostFile.self,
        Pipe.self, PipeFile.self, NamedPipeInode.self,
    ]

    public static func register(in registry: inout StateRegistry) {
        for type in all { registry.register(type) }
    }
}

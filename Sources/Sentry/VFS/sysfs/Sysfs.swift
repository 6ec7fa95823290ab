import Glibc
import State

/// A minimal /sys, mounted where the spec mounts sysfs: the CPU lists in
/// /sys/devices/system/cpu that glibc's get_nprocs/get_nprocs_conf and many
/// runtimes read. Read-only; a file's text is made when it is opened and
/// kept by the open file (procfs's data file), as Linux's attributes are.
public final class SysfsFilesystem: Filesystem, @unchecked Sendable { // immutable after make
    override public class var savedTypeName: String { "sysfs.Filesystem" }
    override public var typeName: String { "sysfs" }
    /// SYSFS_MAGIC.
    override public var magic: Int64 { 0x6265_6572 }

    public static func make(deviceNumber: UInt64) -> SysfsFilesystem {
        let filesystem = SysfsFilesystem()
        filesystem.deviceNumber = deviceNumber
        filesystem.isReadOnly = true
        filesystem.root = Dentry(name: "", parent: nil, inode: SysfsNode.make(path: [], filesystem: filesystem))
        return filesystem
    }
}

/// A directory or file of the fixed tree below, named by its path.
public final class SysfsNode: Inode, @unchecked Sendable { // immutable after creation
    override public class var savedTypeName: String { "sysfs.Node" }

    /// Every directory's entries; the names not listed here as directories are files.
    private static let tree: [[String]: [String]] = [
        []: ["devices"],
        ["devices"]: ["system"],
        ["devices", "system"]: ["cpu"],
        ["devices", "system", "cpu"]: ["online", "possible", "present"],
    ]

    public var path: [String] = []

    static func make(path: [String], filesystem: Filesystem) -> SysfsNode {
        let node = SysfsNode()
        node.path = path
        let type: FileType = tree[path] != nil ? .directory : .regular
        node.initialize(filesystem: filesystem, mode: type.rawValue | (type == .directory ? 0o755 : 0o444),
                        uid: 0, gid: 0)
        node.inodeNumber = inodeNumber(of: path)
        return node
    }

    /// The same number at every lookup: the path's place in a walk of the tree.
    private static func inodeNumber(of path: [String]) -> UInt64 {
        let order = tree.keys.sorted { $0.joined(separator: "/") < $1.joined(separator: "/") }
        var number: UInt64 = 1
        for directory in order {
            if directory == path { return number }
            number += 1
            for name in tree[directory] ?? [] {
                if directory + [name] == path { return number }
                number += 1
            }
        }
        return number
    }

    override public func save(to sink: inout SaveSink) throws {
        try super.save(to: &sink)
        try sink.save("path", path)
    }

    override public func load(from source: inout LoadSource) throws {
        try super.load(from: &source)
        path = try source.load("path")
        guard Self.tree[path] != nil || Self.tree[Array(path.dropLast())]?.contains(path.last ?? "") == true else {
            throw StateError.invalidValue("sysfs has no /\(path.joined(separator: "/"))")
        }
    }

    override public func lookup(_ name: String, in directory: Dentry) throws(SyscallError) -> Dentry? {
        guard let names = Self.tree[path] else { throw .enotdir }
        guard names.contains(name), let filesystem else { return nil }
        return Dentry(name: name, parent: directory, inode: Self.make(path: path + [name], filesystem: filesystem))
    }

    override public func listEntries(in directory: Dentry) throws(SyscallError) -> [DirectoryEntry] {
        guard let names = Self.tree[path] else { throw .enotdir }
        return names.map { name in
            let child = path + [name]
            return DirectoryEntry(name: name, inodeNumber: Self.inodeNumber(of: child),
                                  type: Self.tree[child] != nil ? .directory : .regular)
        }
    }

    override public func open(at location: VirtualPath, flags: UInt32) throws(SyscallError) -> FileDescription {
        if Self.tree[path] != nil { return DirectoryFile(location: location, flags: flags) }
        if flags & LinuxFile.accessModeMask != LinuxFile.readOnly { throw .eacces }
        let file = ProcDataFile(location: location, flags: flags)
        file.setContent(Array(content().utf8))
        return file
    }

    /// The CPUs the sandbox reports (sched_getaffinity's), as a kernel CPU list: "0" or "0-N".
    private func content() -> String {
        let count = Scheduling.cpuCount
        return count > 1 ? "0-\(count - 1)\n" : "0\n"
    }
}

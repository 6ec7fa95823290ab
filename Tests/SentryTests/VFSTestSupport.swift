import State
@testable import Sentry

/// A small tree for VFS tests: tmpfs at /, devfs at /dev, a tmpfs at /tmp.
struct TestTree {
    let vfs = VirtualFilesystem()
    let root: VirtualPath
    var credentials = FileCredentials.root

    init() throws {
        let rootfs = TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber(), rootMode: 0o755)
        root = vfs.mountRoot(rootfs)
        try vfs.mount(Devfs.make(deviceNumber: vfs.allocateDeviceNumber(), terminal: false), at: "/dev")
        try vfs.mount(TmpfsFilesystem.make(deviceNumber: vfs.allocateDeviceNumber()), at: "/tmp")
        try vfs.attachMemoryFile(TestTree.memoryFile())
    }

    /// tmpfs data lives in a MemoryFile: one per process of tests is enough.
    static func memoryFile() throws -> MemoryFile {
        try sharedMemoryFile.get()
    }

    private static let sharedMemoryFile = Result { () throws(SyscallError) -> MemoryFile in
        try MemoryFile.create(capacity: 1 << 32)
    }

    var context: PathContext {
        PathContext(root: root, workingDirectory: root, credentials: credentials)
    }

    func open(_ path: String, _ flags: UInt32, mode: UInt32 = 0o644) throws(SyscallError) -> FileDescription {
        try vfs.open(path, from: root, context: context, flags: flags, mode: mode, umask: 0o022)
    }

    func write(_ path: String, _ text: String, flags: UInt32 = LinuxFile.writeOnly | LinuxFile.create
        | LinuxFile.truncate) throws(SyscallError) {
        let file = try open(path, flags)
        _ = try file.write(Array(text.utf8), at: nil, waiter: nil)
    }

    func read(_ path: String) throws(SyscallError) -> String {
        let file = try open(path, LinuxFile.readOnly)
        return String(decoding: try file.read(count: 1 << 20, at: nil, waiter: nil), as: UTF8.self)
    }

    func stat(_ path: String, follow: Bool = true) throws(SyscallError) -> FileAttributes {
        try vfs.lookup(path, from: root, context: context, followFinal: follow).inode.attributes()
    }

    func mkdir(_ path: String, mode: UInt32 = 0o755) throws(SyscallError) {
        try vfs.makeDirectory(path, from: root, context: context, mode: mode, umask: 0o022)
    }

    func symlink(_ target: String, _ path: String) throws(SyscallError) {
        try vfs.makeSymlink(target: target, at: path, from: root, context: context)
    }

    func names(_ path: String) throws(SyscallError) -> [String] {
        let file = try open(path, LinuxFile.readOnly | LinuxFile.directory)
        let bytes = try file.readDirectory(capacity: 1 << 16)
        var names: [String] = []
        var offset = 0
        while offset + 19 < bytes.count {
            let length = Int(bytes[offset + 16]) | Int(bytes[offset + 17]) << 8
            let nameBytes = bytes[(offset + 19)..<(offset + length)].prefix { $0 != 0 }
            names.append(String(decoding: nameBytes, as: UTF8.self))
            offset += length
        }
        return names
    }
}

/// Runs `body` and returns the errno it threw, or nil (ENOTRECOVERABLE for a non-errno error).
func errnoOf(_ body: () throws -> Void) -> SyscallError? {
    do {
        try body()
        return nil
    } catch let error as SyscallError {
        return error
    } catch {
        return .enotrecoverable
    }
}

func vfsRegistry() -> StateRegistry {
    var registry = StateRegistry()
    VFSStateTypes.register(in: &registry)
    // tmpfs data lives in the MemoryFile.
    registry.register(MemoryFile.self)
    registry.register(SharedMemory.self)
    return registry
}

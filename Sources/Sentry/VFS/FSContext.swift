import State
import Synchronization

/// A process's root, working directory and umask (Linux's fs_struct): shared
/// by threads with CLONE_FS, copied otherwise.
public final class FSContext: Savable, @unchecked Sendable { // fields are guarded by `lock`
    public static let savedTypeName = "vfs.FSContext"
    public static let notSaved: Set<String> = ["lock"]
    public static let savedAs: [String: String] = [
        "rootPath": "root", "workingPath": "workingDirectory", "mask": "umask",
    ]

    /// A leaf, taken under the VFS lock by walks and procfs (see VFSLock).
    private let lock = Mutex(())
    private var rootPath: VirtualPath?
    private var workingPath: VirtualPath?
    private var mask: UInt32 = 0o022

    public required init() {}

    public init(root: VirtualPath, workingDirectory: VirtualPath? = nil, umask: UInt32 = 0o022) {
        rootPath = root
        workingPath = workingDirectory ?? root
        mask = umask
    }

    public func save(to sink: inout SaveSink) throws {
        let (root, cwd, mask) = lock.withLock { _ in (rootPath, workingPath, self.mask) }
        try sink.save("root", root)
        try sink.save("workingDirectory", cwd)
        try sink.save("umask", mask)
    }

    public func load(from source: inout LoadSource) throws {
        let root: VirtualPath? = try source.load("root")
        let cwd: VirtualPath? = try source.load("workingDirectory")
        let mask: UInt32 = try source.load("umask")
        lock.withLock { _ in
            rootPath = root
            workingPath = cwd
            self.mask = mask
        }
        try ImageValidation.require(mask & ~0o777 == 0, field: "umask", "umask \(String(mask, radix: 8)) has bits above 0777")
    }

    public func afterLoad() throws {
        let (root, cwd) = lock.withLock { _ in (rootPath, workingPath) }
        for (path, field) in [(root, "root"), (cwd, "workingDirectory")] {
            guard let path else { continue }
            try path.validateLoaded(field: field)
            try ImageValidation.require(path.inode.isDirectory, field: field, "not a directory")
        }
    }

    /// The process's root; EINVAL only for a context that was never set up.
    public func root() throws(SyscallError) -> VirtualPath {
        guard let root = lock.withLock({ _ in rootPath }) else { throw .einval }
        return root
    }

    public func workingDirectory() throws(SyscallError) -> VirtualPath {
        guard let cwd = lock.withLock({ _ in workingPath ?? rootPath }) else { throw .einval }
        return cwd
    }

    public func setWorkingDirectory(_ path: VirtualPath) {
        lock.withLock { _ in workingPath = path }
    }

    public func setRoot(_ path: VirtualPath) {
        lock.withLock { _ in rootPath = path }
    }

    public var umask: UInt32 { lock.withLock { _ in mask } }

    /// umask(2): sets the mask and returns the old one.
    public func swapUmask(_ newMask: UInt32) -> UInt32 {
        lock.withLock { _ in
            defer { mask = newMask & 0o777 }
            return mask
        }
    }

    /// fork without CLONE_FS.
    public func fork() -> FSContext {
        let (root, cwd, mask) = lock.withLock { _ in (rootPath, workingPath, self.mask) }
        let copy = FSContext()
        copy.rootPath = root
        copy.workingPath = cwd
        copy.mask = mask
        return copy
    }
}

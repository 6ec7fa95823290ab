import OCI

/// What the Loader needs to start a container (runsc/boot/loader.go's Args).
public struct LoaderArgs: Sendable {
    public var containerID: String
    public var spec: Spec
    /// The bundle's rootfs as a host directory.
    public var rootfs: String
    /// The container's stdin, stdout, stderr as host FDs. The Loader moves them
    /// to 256, 257, 258 and closes these, so pass duplicates of descriptors
    /// the caller wants to keep.
    public var stdioFDs: [Int32]
    public var configuration: Configuration

    public struct Configuration: Sendable {
        /// Count syscalls by name and log the counts at exit (`--debug`).
        public var countSyscalls: Bool
        /// The save/restore test mode: every this many application syscalls the
        /// kernel is saved, thrown away and restored (0: off).
        public var saveRestoreEvery: UInt64
        /// Where that mode keeps its images (removed when the container ends).
        public var saveRestoreDirectory: String?
        /// A file that mode appends its cycle count to when the container ends (for test suites).
        public var saveRestoreTally: String?

        public init(countSyscalls: Bool = false, saveRestoreEvery: UInt64 = 0, saveRestoreDirectory: String? = nil,
                    saveRestoreTally: String? = nil) {
            self.countSyscalls = countSyscalls
            self.saveRestoreEvery = saveRestoreEvery
            self.saveRestoreDirectory = saveRestoreDirectory
            self.saveRestoreTally = saveRestoreTally
        }
    }

    public init(containerID: String, spec: Spec, rootfs: String, stdioFDs: [Int32],
                configuration: Configuration = Configuration()) {
        self.containerID = containerID
        self.spec = spec
        self.rootfs = rootfs
        self.stdioFDs = stdioFDs
        self.configuration = configuration
    }
}

/// Why the Loader could not start the container.
public struct LoaderError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

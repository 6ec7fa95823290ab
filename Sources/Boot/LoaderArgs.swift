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
        public init(countSyscalls: Bool = false) {
            self.countSyscalls = countSyscalls
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

import Glibc

/// What the Sentry reads from the host's /proc and /sys about the machine
/// (its CPUs, its own auxiliary vector), read once: `runsc boot` calls
/// `capture` before it pivots into an empty root, where neither is (glibc's
/// sysconf(_SC_NPROCESSORS_ONLN) answers 1 there).
public enum HostFacts {
    public static func capture() {
        _ = HostAuxv.values
        _ = ProcNode.hostCPUInformation
        _ = onlineCPUs
    }

    /// The host's online CPUs, at least 1.
    static let onlineCPUs: Int = max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1)
}

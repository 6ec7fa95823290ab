/// What the Sentry reads from the host's /proc about the machine (its CPU,
/// its own auxiliary vector), read once: `runsc boot` calls `capture` before
/// it pivots into an empty root, where no /proc is.
public enum HostFacts {
    public static func capture() {
        _ = HostAuxv.values
        _ = ProcNode.hostCPUInformation
    }
}

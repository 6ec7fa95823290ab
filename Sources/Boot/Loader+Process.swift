import OCI
import Sentry

/// How the spec's process becomes the init process's credentials, limits,
/// and environment, as runsc derives them.
extension Loader {
    static func credentials(for process: Spec.Process) -> Credentials {
        var capabilities: CapabilitySets?
        if let caps = process.capabilities {
            capabilities = CapabilitySets(effective: Spec.Capabilities.mask(caps.effective),
                                          permitted: Spec.Capabilities.mask(caps.permitted),
                                          inheritable: Spec.Capabilities.mask(caps.inheritable),
                                          bounding: Spec.Capabilities.mask(caps.bounding),
                                          ambient: Spec.Capabilities.mask(caps.ambient))
        }
        return Credentials(uid: process.user.uid, gid: process.user.gid,
                           supplementaryGIDs: process.user.additionalGids ?? [], capabilities: capabilities)
    }

    static func limits(for process: Spec.Process) throws(LoaderError) -> Limits {
        var limits = Limits()
        for rlimit in process.rlimits {
            guard let resource = Limits.Resource.allCases.first(where: { $0.specName == rlimit.type }) else {
                throw LoaderError("unknown rlimit type \(rlimit.type)")
            }
            guard rlimit.soft <= rlimit.hard else {
                throw LoaderError("rlimit \(rlimit.type): soft limit \(rlimit.soft) exceeds hard limit \(rlimit.hard)")
            }
            limits[resource] = Limits.Limit(soft: rlimit.soft, hard: rlimit.hard)
        }
        return limits
    }

    /// The spec's linux.resources.memory.limit in bytes (what the MemoryFile
    /// may hold); none, zero or negative (-1 is runc's "unlimited") is no limit.
    static func memoryLimit(_ spec: Spec) -> UInt64 {
        guard let limit = spec.linux?.resources?.memory?.limit, limit > 0 else { return .max }
        return UInt64(limit)
    }

    /// The personality(2) flags the spec's `linux.personality` gives every
    /// process the container starts (Bundle.load has refused unknown flags).
    static func personality(_ spec: Spec) -> UInt32 {
        let flags = spec.linux?.personality?.flags ?? []
        return flags.contains("ADDR_NO_RANDOMIZE") ? LinuxPersonality.ADDR_NO_RANDOMIZE : LinuxPersonality.PER_LINUX
    }

    /// The spec's environment, plus HOME from the rootfs's /etc/passwd when
    /// it is not set (runsc does this; "/" if the user has no entry).
    static func environment(for process: Spec.Process, files: ContainerFiles) -> [String] {
        var env = process.env
        if !env.contains(where: { $0.hasPrefix("HOME=") }) {
            env.append("HOME=" + homeDirectory(uid: process.user.uid, files: files))
        }
        return env
    }

    static func homeDirectory(uid: UInt32, files: ContainerFiles) -> String {
        guard let passwd = try? files.read("/etc/passwd", limit: 1 << 20) else { return "/" }
        for line in String(decoding: passwd, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 6, UInt32(fields[2]) == uid { return String(fields[5]) }
        }
        return "/"
    }
}

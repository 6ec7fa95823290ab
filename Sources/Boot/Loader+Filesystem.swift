import Glibc
import OCI
import Sentry

/// The container's mount tree from the spec, as runsc builds it.
extension Loader {
    /// The spec's mounts in the Sentry's terms. /dev and /proc get the
    /// Sentry's own filesystems when the spec does not say otherwise; mounts
    /// the Sentry has no filesystem for (devpts, mqueue, cgroup) are skipped.
    static func containerMounts(_ spec: Spec) throws(LoaderError) -> [ContainerMount] {
        var mounts: [ContainerMount] = []
        for mount in spec.mounts {
            let options = mount.options ?? []
            let readOnly = options.contains("ro")
            let flags = ContainerMount.flags(options: options)
            let destination = "/" + mount.destination.split(separator: "/").joined(separator: "/")
            let type = mount.type ?? ""
            if type == "bind" || options.contains("bind") || options.contains("rbind") {
                guard let source = mount.source else {
                    throw LoaderError("bind mount at \(destination) has no source")
                }
                mounts.append(ContainerMount(destination: destination, kind: .host(path: source), readOnly: readOnly,
                                             flags: flags))
                continue
            }
            switch type {
            case "proc":
                mounts.append(ContainerMount(destination: destination, kind: .proc, readOnly: readOnly, flags: flags))
            case "tmpfs" where destination == "/dev":
                mounts.append(ContainerMount(destination: destination, kind: .devfs, readOnly: readOnly, flags: flags))
            case "tmpfs":
                let limits = try tmpfsLimits(options, destination: destination)
                mounts.append(ContainerMount(destination: destination,
                                             kind: .tmpfs(mode: tmpfsMode(options), size: limits.size,
                                                          inodes: limits.inodes),
                                             readOnly: readOnly, flags: flags))
            case "sysfs":
                mounts.append(ContainerMount(destination: destination, kind: .sysfs, readOnly: true, flags: flags))
            default:
                continue
            }
        }
        return mounts
    }

    /// The host files and directories the spec's bind mounts show (their
    /// sources), which the sandbox keeps in its root (Confinement).
    public static func hostMountSources(_ spec: Spec) throws(LoaderError) -> [String] {
        try containerMounts(spec).compactMap { mount in
            if case .host(let path) = mount.kind { return path }
            return nil
        }
    }

    /// tmpfs's `size=` (bytes with a k/m/g/t suffix, or a percentage of the
    /// host's RAM), `nr_blocks=` (pages) and `nr_inodes=`, as Linux's tmpfs
    /// parses them; 0 is no limit. A value Linux would refuse fails the mount.
    static func tmpfsLimits(_ options: [String], destination: String) throws(LoaderError)
        -> (size: UInt64?, inodes: UInt64?) {
        var size: UInt64?, inodes: UInt64?
        for option in options {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["size", "nr_blocks", "nr_inodes"].contains(parts[0]) else { continue }
            let value: UInt64?
            if parts[0] == "size", parts[1].hasSuffix("%") {
                value = UInt64(parts[1].dropLast()).map(shareOfMemory)
            } else {
                value = memoryParse(parts[1])
            }
            guard let value else {
                throw LoaderError("tmpfs mount at \(destination): bad value in \(option)")
            }
            switch parts[0] {
            case "size": size = value
            case "nr_blocks":
                let (bytes, overflow) = value.multipliedReportingOverflow(by: Page.size)
                size = overflow ? .max : bytes
            default: inodes = value
            }
        }
        return (size == 0 ? nil : size, inodes == 0 ? nil : inodes)
    }

    /// `percent` of the host's RAM in bytes, as tmpfs's `size=N%` (its bytes for an overflow).
    static func shareOfMemory(_ percent: UInt64) -> UInt64 {
        let pages = UInt64(clamping: sysconf(Int32(_SC_PHYS_PAGES)))
        let (product, overflow) = pages.multipliedReportingOverflow(by: percent)
        let (bytes, tooLarge) = product.multipliedReportingOverflow(by: Page.size)
        return overflow || tooLarge ? .max : bytes / 100
    }

    /// Linux's memparse: a decimal number with an optional K, M, G, T, P or E suffix.
    static func memoryParse(_ text: String) -> UInt64? {
        let suffixes: [Character: UInt64] = ["k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60]
        var digits = Substring(text)
        var shift: UInt64 = 0
        if let last = digits.last?.lowercased().first, let found = suffixes[last] {
            shift = found
            digits = digits.dropLast()
        }
        guard let number = UInt64(digits) else { return nil }
        guard number <= UInt64.max >> shift else { return nil }
        return number << shift
    }

    /// tmpfs's `mode=` option (octal), 1777 by default as Linux's tmpfs.
    static func tmpfsMode(_ options: [String]) -> UInt32 {
        for option in options where option.hasPrefix("mode=") {
            if let mode = UInt32(option.dropFirst(5), radix: 8) { return mode }
        }
        return 0o1777
    }
}

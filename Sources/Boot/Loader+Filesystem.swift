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
                mounts.append(ContainerMount(destination: destination, kind: .tmpfs(mode: tmpfsMode(options)),
                                             readOnly: readOnly, flags: flags))
            case "sysfs":
                mounts.append(ContainerMount(destination: destination, kind: .sysfs, readOnly: true, flags: flags))
            default:
                continue
            }
        }
        return mounts
    }

    /// tmpfs's `mode=` option (octal), 1777 by default as Linux's tmpfs.
    static func tmpfsMode(_ options: [String]) -> UInt32 {
        for option in options where option.hasPrefix("mode=") {
            if let mode = UInt32(option.dropFirst(5), radix: 8) { return mode }
        }
        return 0o1777
    }
}

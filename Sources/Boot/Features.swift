import OCI
import Sentry

/// The OCI features document (runtime-spec features.md), as `runc features`
/// prints it, saying what this runtime does with a spec: the versions it
/// takes, the mount options it honours, the namespaces every container has
/// (the Sentry gives each its own), the capabilities it models, the seccomp
/// actions and comparisons the Sentry enforces, the host cgroups `runsc
/// create` puts the sandbox in (v1 and v2 with cgroupfs; `--systemd-cgroup`
/// paths are made with cgroupfs too, systemd is never asked). It runs no
/// hooks and applies no AppArmor or SELinux label, so those say so.
public struct Features: Codable, Sendable, Equatable {
    public struct Linux: Codable, Sendable, Equatable {
        public struct Cgroup: Codable, Sendable, Equatable {
            public var v1: Bool
            public var v2: Bool
            public var systemd: Bool
            public var systemdUser: Bool
        }

        public struct Enabled: Codable, Sendable, Equatable {
            public var enabled: Bool
        }

        public struct Seccomp: Codable, Sendable, Equatable {
            public var enabled: Bool
            public var actions: [String]
            public var operators: [String]
            public var archs: [String]
        }

        public var namespaces: [String]
        public var capabilities: [String]
        public var cgroup: Cgroup
        public var seccomp: Seccomp
        public var apparmor: Enabled
        public var selinux: Enabled
    }

    public var ociVersionMin: String
    public var ociVersionMax: String
    public var hooks: [String]
    public var mountOptions: [String]
    public var linux: Linux
    public var annotations: [String: String]

    /// runc's annotation saying `checkpoint` and `restore` work.
    public static let checkpointAnnotation = "org.opencontainers.runc.checkpoint.enabled"

    public static let current = Features(
        ociVersionMin: "1.0.0", ociVersionMax: Spec.currentVersion, hooks: [],
        // Loader.containerMounts and tmpfsLimits read these; others are ignored.
        mountOptions: ["bind", "mode", "noexec", "nodev", "nosuid", "nr_blocks", "nr_inodes", "rbind", "ro", "rw", "size"],
        linux: Linux(namespaces: ["ipc", "mount", "network", "pid", "uts"], capabilities: Spec.Capabilities.names,
                     cgroup: Linux.Cgroup(v1: true, v2: true, systemd: false, systemdUser: false),
                     seccomp: Linux.Seccomp(enabled: true, actions: Spec.Seccomp.actionNames,
                                            operators: Spec.Seccomp.Operator.allCases.map(\.rawValue),
                                            archs: [Spec.Seccomp.nativeArchitecture]),
                     apparmor: Linux.Enabled(enabled: false),
                     selinux: Linux.Enabled(enabled: false)),
        annotations: [checkpointAnnotation: "true"])
}

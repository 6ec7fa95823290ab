import FoundationEssentials
import OCI
import Sentry

/// A restore may use another bundle than the checkpoint's: a migration
/// brings the image to another host, where the bundle has another path. The
/// image's process and mount tree are the ones that run, so a restore
/// refuses only what the image cannot do without (a host directory it had
/// mounted, which must be bound at the same place, see `reattachFiles`) and
/// logs every other difference by name rather than accepting it silently.
extension Loader {
    /// Manifest metadata: the checkpoint bundle's process, as `ProcessFacts` JSON.
    static let processKey = "process"

    /// What of the spec's process a restore compares.
    struct ProcessFacts: Codable, Equatable {
        var args: [String]
        var env: [String]
        var cwd: String
        var uid: UInt32
        var gid: UInt32

        init?(_ spec: Spec) {
            guard let process = spec.process else { return nil }
            args = process.args
            env = process.env
            cwd = process.cwd
            uid = process.user.uid
            gid = process.user.gid
        }
    }

    static func processMetadata(_ spec: Spec) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ProcessFacts(spec).flatMap { try? encoder.encode($0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    /// How the restoring bundle differs from the checkpoint's, one phrase per
    /// difference: the process (when the image recorded it), the mounts
    /// (against the image's own mount tree), or else only the spec digest.
    static func bundleDifferences(metadata: [String: String], spec: Spec, vfs: VirtualFilesystem,
                                  mounts: [ContainerMount]) -> [String] {
        var differences: [String] = []
        if let saved = metadata[processKey].flatMap({ try? JSONDecoder().decode(ProcessFacts.self, from: Data($0.utf8)) }),
           let now = ProcessFacts(spec), saved != now {
            if saved.args != now.args { differences.append("process.args \(saved.args) → \(now.args)") }
            if saved.cwd != now.cwd { differences.append("process.cwd \(saved.cwd) → \(now.cwd)") }
            if saved.uid != now.uid || saved.gid != now.gid {
                differences.append("process.user \(saved.uid):\(saved.gid) → \(now.uid):\(now.gid)")
            }
            let changed = Set(Set(saved.env).symmetricDifference(Set(now.env)).map { String($0.prefix { $0 != "=" }) })
            if !changed.isEmpty { differences.append("process.env \(changed.sorted().joined(separator: ", "))") }
        }
        let imageMounts = Dictionary(vfs.mountTable.map { ($0.target, $0.kind) }, uniquingKeysWith: { first, _ in first })
        var bundleMounts = Dictionary(mounts.map { ($0.destination, category($0.kind)) }, uniquingKeysWith: { _, last in last })
        for (implicit, kind) in [("/dev", "tmpfs"), ("/proc", "proc")] where bundleMounts[implicit] == nil {
            bundleMounts[implicit] = kind
        }
        for (target, kind) in imageMounts.sorted(by: { $0.key < $1.key }) where target != "/" {
            switch bundleMounts[target] {
            case nil: differences.append("mount \(target) (\(kind)) is not in the bundle; the image's is kept")
            case let other? where other != kind:
                differences.append("mount \(target) is \(other) in the bundle, \(kind) in the image; the image's is kept")
            default: break
            }
        }
        for (target, kind) in bundleMounts.sorted(by: { $0.key < $1.key }) where imageMounts[target] == nil {
            differences.append("the bundle mounts \(target) (\(kind)), which the image does not have; it is not mounted")
        }
        if differences.isEmpty, let saved = metadata[specDigestKey], saved != digest(of: spec) {
            differences.append("the spec's digest \(saved) → \(digest(of: spec))")
        }
        return differences
    }

    /// "bind" for a host directory, else the filesystem's type, as the image's mount tree names them.
    static func category(_ kind: ContainerMount.Kind) -> String {
        switch kind {
        case .host: "bind"
        case .proc: "proc"
        case .sysfs: "sysfs"
        case .tmpfs, .devfs: "tmpfs"
        }
    }
}

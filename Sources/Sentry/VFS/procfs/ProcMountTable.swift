/// /proc/[pid]/mounts and mountinfo from the VFS mount table, in the formats
/// of fs/proc_namespace.c, so getmntent (df, mount) reads them.
enum ProcMountTable {
    static let readOnlyFlag: UInt64 = 1
    static let noSetUIDFlag: UInt64 = 2
    static let noDevicesFlag: UInt64 = 4
    static let noExecFlag: UInt64 = 8

    /// `source target type options 0 0`, one line per mount.
    static func mounts(_ mounts: [Mount]) -> String {
        mounts.map { mount in
            let filesystem = mount.filesystem
            return "\(source(of: filesystem)) \(escaped(mount.target)) \(filesystem.typeName) "
                + "\(options(of: mount)) 0 0\n"
        }.joined()
    }

    /// `id parent major:minor root target options - type source superoptions`;
    /// IDs are positions in the table (mounts are only appended), the root
    /// mount's parent is itself.
    static func mountInformation(_ mounts: [Mount]) -> String {
        mounts.enumerated().map { index, mount in
            let filesystem = mount.filesystem
            let parentIndex = mounts.firstIndex { $0 === mount.parent } ?? index
            let device = filesystem.deviceNumber
            let superOptions = filesystem.isReadOnly ? "ro" : "rw"
            return "\(index + 1) \(parentIndex + 1) \(DeviceNumber.major(device)):\(DeviceNumber.minor(device)) / "
                + "\(escaped(mount.target)) \(options(of: mount)) - \(filesystem.typeName) "
                + "\(source(of: filesystem)) \(superOptions)\n"
        }.joined()
    }

    /// What the mount was made from: the host-backed root has no device ("none", as runsc shows).
    private static func source(of filesystem: Filesystem) -> String {
        switch filesystem.typeName {
        case "proc", "tmpfs", "devtmpfs", "sysfs": filesystem.typeName
        default: "none"
        }
    }

    private static func options(of mount: Mount) -> String {
        var options = [mount.isWritable ? "rw" : "ro"]
        if mount.flags & noSetUIDFlag != 0 { options.append("nosuid") }
        if mount.flags & noDevicesFlag != 0 { options.append("nodev") }
        if mount.flags & noExecFlag != 0 { options.append("noexec") }
        return options.joined(separator: ",")
    }

    /// Space, tab, newline and backslash as octal escapes, as Linux's mangle().
    static func escaped(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case 0x20: out += "\\040"
            case 0x09: out += "\\011"
            case 0x0a: out += "\\012"
            case 0x5c: out += "\\134"
            default: out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }
}

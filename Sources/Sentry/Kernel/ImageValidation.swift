import State

/// Checks of the values a restore takes from an image. Checksums catch
/// corruption, not an attacker (anyone can edit an image and reseal it), so
/// every loaded value is held to what the syscalls that made it would have
/// accepted; a value that fails is refused with the field's name.
enum ImageValidation {
    /// A directory entry's name, as a creating syscall checks it: not empty,
    /// `.` or `..`, no `/` or NUL, at most NAME_MAX bytes.
    static func name(_ name: String, field: String) throws {
        guard Host.isPlainName(name) else {
            throw StateError.invalidValue("\(describe(name)) is not a file name", field: field)
        }
    }

    /// A path the kernel printed or was given: absolute, shorter than
    /// PATH_MAX, no NUL, no `.` or `..` component.
    static func absolutePath(_ path: String, field: String) throws {
        let bytes = path.utf8
        let components = LinuxFile.components(of: path)
        guard bytes.first == UInt8(ascii: "/"), bytes.count < LinuxFile.pathMax, !bytes.contains(0),
              components.allSatisfy({ $0 != "." && $0 != ".." && $0.utf8.count <= LinuxFile.nameMax }) else {
            throw StateError.invalidValue("\(describe(path)) is not a clean absolute path", field: field)
        }
    }

    /// A path below a filesystem root as names, one per level.
    static func components(_ components: [String], field: String) throws {
        guard components.count < LinuxFile.pathMax / 2 else {
            throw StateError.invalidValue("\(components.count) path components", field: field)
        }
        for (index, name) in components.enumerated() {
            try self.name(name, field: "\(field)[\(index)]")
        }
        guard components.reduce(0, { $0 + $1.utf8.count + 1 }) < LinuxFile.pathMax else {
            throw StateError.invalidValue("the path is longer than PATH_MAX", field: field)
        }
    }

    /// A thread, process, group or session ID: 1 up to pid_max.
    static func processID(_ id: Int32, field: String) throws {
        try require(id >= 1 && id < PIDNamespace.maxID, field: field, "\(id) is not a PID in 1..<\(PIDNamespace.maxID)")
    }

    /// symlink(2)'s target: not empty, shorter than PATH_MAX, no NUL.
    static func symlinkTarget(_ target: String, field: String) throws {
        let bytes = target.utf8
        guard !bytes.isEmpty, bytes.count < LinuxFile.pathMax, !bytes.contains(0) else {
            throw StateError.invalidValue("\(describe(target)) is not a symlink target", field: field)
        }
    }

    /// Fails with `message` unless `condition` holds.
    static func require(_ condition: Bool, field: String, _ message: @autoclosure () -> String) throws {
        guard condition else { throw StateError.invalidValue(message(), field: field) }
    }

    /// A string quoted for an error message, cut short and with controls escaped.
    static func describe(_ text: String) -> String {
        let shown = text.utf8.count > 64 ? String(decoding: text.utf8.prefix(64), as: UTF8.self) + "…" : text
        return "\"" + shown.unicodeScalars.map { $0.value < 0x20 ? "\\u{\(String($0.value, radix: 16))}" : String($0) }
            .joined() + "\""
    }
}

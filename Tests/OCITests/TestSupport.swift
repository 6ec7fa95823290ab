import FoundationEssentials
@testable import OCI

/// A fresh directory under the system temporary directory, removed when the test ends.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory.path + "/oci-tests-\(UInt64.random(in: 0...UInt64.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func makeDirectory(_ path: String) throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
}

/// A bundle directory with a `rootfs` and the given config text.
func makeBundle(in directory: String, config: String?) throws -> String {
    let bundle = directory + "/bundle"
    try makeDirectory(bundle + "/rootfs")
    if let config { try writeFile(bundle + "/config.json", config) }
    return bundle
}

/// The default spec's JSON with one edit applied to its decoded form, as a test config.
func defaultConfig(_ edit: (inout Spec) -> Void = { _ in }) throws -> String {
    var spec = Spec.makeDefault()
    edit(&spec)
    return String(decoding: try spec.encodedJSON(), as: UTF8.self)
}

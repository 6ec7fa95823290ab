import Foundation
import Platform
import Testing

/// The golden images under fixtures/snapshots/ (see its README) still restore
/// and their programs finish with the expected output.
@Suite(.serialized) struct SnapshotTests {
    static var directory: String { Fixtures.directory + "/snapshots" }

    static var names: [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { $0.hasSuffix(".args") }.map { String($0.dropLast(".args".count)) }.sorted()
    }

    /// The images whose CPU features (XSAVE components and area size, in
    /// their manifest) this host has: a restore refuses the others.
    static var restorableNames: [String] {
        names.filter { name in
            guard let manifest = try? String(contentsOfFile: directory + "/\(name)/manifest.json", encoding: .utf8),
                  let features = manifestNumber(manifest, "xsave-features:0x", radix: 16),
                  let size = manifestNumber(manifest, "xsave-size:", radix: 10) else { return false }
            return features & ~FloatingPointState.hostFeatures == 0 && size <= UInt64(FloatingPointState.hostSize)
        }
    }

    private static func manifestNumber(_ manifest: String, _ prefix: String, radix: Int) -> UInt64? {
        guard let start = manifest.range(of: prefix)?.upperBound else { return nil }
        return UInt64(manifest[start...].prefix { $0.isHexDigit }, radix: radix)
    }

    @Test func everyGoldenImageHasItsArgumentsAndExpectedOutput() throws {
        #expect(Self.names.count >= 2)
        for name in Self.names {
            #expect(FileManager.default.fileExists(atPath: Self.directory + "/\(name)/manifest.json"), "\(name)")
            #expect(FileManager.default.fileExists(atPath: Self.directory + "/\(name).expected"), "\(name)")
        }
    }

    @Test(arguments: restorableNames)
    func goldenImageRestoresAndFinishes(name: String) throws {
        let arguments = try String(contentsOfFile: Self.directory + "/\(name).args", encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let expected = try String(contentsOfFile: Self.directory + "/\(name).expected", encoding: .utf8)
        let session = try CheckpointSession(arguments)
        try FileManager.default.copyItem(atPath: Self.directory + "/" + name, toPath: session.path("image"))
        let status = try session.restore("golden", image: "image", output: "output")
        #expect(status == 0, "\(name): \(session.errors(of: "output"))")
        #expect(session.read("output") == expected, "\(name)")
    }
}

import Foundation
import Testing

/// The golden images under fixtures/snapshots/ (see its README) still restore
/// and their programs finish with the expected output.
@Suite(.serialized) struct SnapshotTests {
    static var directory: String { Fixtures.directory + "/snapshots" }

    static var names: [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.filter { $0.hasSuffix(".args") }.map { String($0.dropLast(".args".count)) }.sorted()
    }

    /// The images rely on AVX-512 state (the host they were taken on); a restore refuses hosts without it.
    static var hostHasTheirCPUFeatures: Bool {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?
            .split(separator: " ").contains("avx512f") ?? false
    }

    @Test func everyGoldenImageHasItsArgumentsAndExpectedOutput() throws {
        #expect(Self.names.count >= 2)
        for name in Self.names {
            #expect(FileManager.default.fileExists(atPath: Self.directory + "/\(name)/manifest.json"), "\(name)")
            #expect(FileManager.default.fileExists(atPath: Self.directory + "/\(name).expected"), "\(name)")
        }
    }

    @Test(.enabled(if: hostHasTheirCPUFeatures), arguments: names)
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

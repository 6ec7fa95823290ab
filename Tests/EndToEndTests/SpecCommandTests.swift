import Foundation
import OCI
import Testing

@Suite struct SpecCommandTests {
    @Test func specWritesADefaultConfigInTheCurrentDirectory() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("spec")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        let text = try workspace.read("config.json")
        let spec = try JSONDecoder().decode(Spec.self, from: Data(text.utf8))
        #expect(spec == Spec.makeDefault())
        #expect(text.contains("\"args\" : [\n      \"sh\"\n    ]"), "pretty-printed: \(text)")
    }

    @Test func specTakesTheCommandAfterADoubleDash() throws {
        let workspace = try Workspace()
        try FileManager.default.createDirectory(atPath: workspace.path + "/b", withIntermediateDirectories: true)
        let result = try workspace.runsc("spec", "--bundle", "b", "--", "/bin/echo", "hello", "--not-a-runsc-flag")
        #expect(result.status == 0, "\(result.stderr)")
        let spec = try JSONDecoder().decode(Spec.self, from: Data(try workspace.read("b/config.json").utf8))
        #expect(spec.process?.args == ["/bin/echo", "hello", "--not-a-runsc-flag"])
    }

    @Test func specNeverOverwritesAnExistingConfig() throws {
        let workspace = try Workspace()
        try Data("{\"mine\": true}".utf8).write(to: URL(fileURLWithPath: workspace.path + "/config.json"))
        let result = try workspace.runsc("spec")
        #expect(result.status == 1)
        #expect(result.isCleanError)
        #expect(result.stderr.contains("already exists"))
        #expect(try workspace.read("config.json") == "{\"mine\": true}")
    }

    @Test func specIntoAMissingDirectoryFails() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("spec", "-b", "does-not-exist")
        #expect(result.isCleanError)
        #expect(result.stderr.contains("does-not-exist"))
    }

    @Test func aBundleFromSpecPassesValidation() throws {
        let workspace = try Workspace()
        let bundle = try workspace.makeBundle(command: ["/bin/true"])
        let loaded = try OCI.Bundle.load(directory: bundle)
        #expect(loaded.rootfs == bundle + "/rootfs")
    }
}

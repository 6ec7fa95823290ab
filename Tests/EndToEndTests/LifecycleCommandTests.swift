import Foundation
import Testing

/// The lifecycle commands check their arguments before anything starts, and
/// report each mistake as one `runsc: ...` line.
@Suite struct LifecycleCommandTests {
    @Test func runDefaultsToTheCurrentDirectoryAsBundle() throws {
        let session = try ContainerSession(["/bin/hello"])
        let result = try RunscProcess.run(["--root", session.workspace.stateRoot, "run", "c1"], in: session.bundle)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "hello, world\n")
    }

    @Test func runReportsAMissingConfig() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("run", "c1")
        #expect(result.status == 1)
        #expect(result.isCleanError)
        #expect(result.stderr.contains(workspace.path + "/config.json: no such file"), "\(result.stderr)")
    }

    @Test func runReportsAMissingRootfsByField() throws {
        let workspace = try Workspace()
        let bundle = try workspace.makeBundle()
        try FileManager.default.removeItem(atPath: bundle + "/rootfs")
        let result = try workspace.runsc("run", "-b", bundle, "c1")
        #expect(result.isCleanError)
        #expect(result.stderr.contains("config.json: root.path: \(bundle)/rootfs does not exist"), "\(result.stderr)")
    }

    @Test func runReportsMalformedJSONWithItsPosition() throws {
        let workspace = try Workspace()
        let bundle = try workspace.makeBundle()
        try Data("{\n  \"ociVersion\": \"1.0.0\"\n  \"process\": {}\n}".utf8)
            .write(to: URL(fileURLWithPath: bundle + "/config.json"))
        let result = try workspace.runsc("create", "--bundle", bundle, "c1")
        #expect(result.isCleanError)
        #expect(result.stderr.contains("malformed JSON at line 3, column 3"), "\(result.stderr)")
    }

    @Test(arguments: ["", "a/b", "..", "has space", String(repeating: "x", count: 1025)])
    func invalidContainerIDsAreRefused(_ id: String) throws {
        let workspace = try Workspace()
        let bundle = try workspace.makeBundle()
        let result = try workspace.runsc("run", "--bundle", bundle, id)
        #expect(result.status == 1)
        #expect(result.isCleanError)
        #expect(result.stderr.contains("invalid container ID"), "\(result.stderr)")
    }

    @Test(arguments: [
        ["start", "nope"], ["state", "nope"], ["kill", "nope"], ["kill", "nope", "KILL"], ["delete", "nope"],
        ["wait", "nope"], ["checkpoint", "--image-path", "img", "nope"],
    ])
    func commandsOnAMissingContainerSaySo(_ arguments: [String]) throws {
        let workspace = try Workspace()
        let result = try RunscProcess.run(["--root", workspace.stateRoot] + arguments)
        #expect(result.status == 1)
        #expect(result.stderr == "runsc: container \"nope\" does not exist\n")
    }

    @Test func forcedDeleteOfAMissingContainerSucceedsAndClearsLeftovers() throws {
        let workspace = try Workspace()
        try FileManager.default.createDirectory(atPath: workspace.stateRoot + "/half", withIntermediateDirectories: true)
        #expect(try workspace.runsc("delete", "--force", "half").status == 0)
        #expect(!FileManager.default.fileExists(atPath: workspace.stateRoot + "/half"))
        #expect(try workspace.runsc("delete", "-f", "never-existed").status == 0)
    }

    @Test(arguments: ["BOGUS", "0", "65", "SIGNOPE", "-9"])
    func killRefusesUnknownSignals(_ signal: String) throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("kill", "c1", signal)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("runsc: "), "\(result.stderr)")
    }

    @Test(arguments: ["KILL", "SIGKILL", "kill", "9", "TERM", "USR1", "RTMIN+2"])
    func killAcceptsNamesAndNumbers(_ signal: String) throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("kill", "c1", signal)
        #expect(result.stderr == "runsc: container \"c1\" does not exist\n", "\(signal): \(result.stderr)")
    }

    @Test func restoreChecksTheImageAndBundle() throws {
        let workspace = try Workspace()
        let bundle = try workspace.makeBundle()
        let noImage = try workspace.runsc("restore", "--image-path", "missing-image", "--bundle", bundle, "c1")
        #expect(noImage.isCleanError)
        #expect(noImage.stderr.contains("missing-image"))
        try FileManager.default.createDirectory(atPath: workspace.path + "/image", withIntermediateDirectories: true)
        let result = try workspace.runsc("restore", "--image-path", "image", "--bundle", bundle, "--detach", "c1")
        #expect(result.isCleanError, "\(result.stderr)")
        #expect(result.stderr.contains("cannot restore from"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: workspace.stateRoot + "/c1"), "nothing may be left behind")
    }

    @Test func checkpointNeedsAnImagePath() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("checkpoint", "c1")
        #expect(result.status == 64)
        #expect(result.stderr.contains("--image-path"))
        let badCompression = try workspace.runsc("checkpoint", "--image-path", "x", "--compression", "gzip", "c1")
        #expect(badCompression.status == 64)
    }

    @Test func listOfAnEmptyRootPrintsOnlyTheHeader() throws {
        let workspace = try Workspace()
        let table = try workspace.runsc("list")
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout == "ID   PID   STATUS   BUNDLE\n")
        let json = try workspace.runsc("list", "--format", "json")
        #expect(json.stdout == "[]\n")
        #expect(try workspace.runsc("list", "-q").stdout.isEmpty)
    }
}

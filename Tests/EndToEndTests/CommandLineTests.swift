import Foundation
import Testing

@Suite struct CommandLineTests {
    static let subcommands = [
        "run", "create", "start", "state", "kill", "delete", "list", "wait", "checkpoint", "restore", "spec", "statefile",
        "exec", "ps", "pause", "resume", "events", "features",
    ]

    @Test func helpListsEverySubcommand() throws {
        let result = try RunscProcess.run(["--help"])
        #expect(result.status == 0)
        for name in Self.subcommands {
            #expect(result.stdout.contains("  \(name) "), "\(name) missing from help")
        }
    }

    @Test(arguments: subcommands)
    func everySubcommandHasHelp(_ name: String) throws {
        let result = try RunscProcess.run([name, "--help"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("USAGE: runsc \(name)"))
        #expect(result.stdout.contains("--root"))
    }

    @Test func usageErrorsAreOneRunscMessageAndANonZeroExit() throws {
        let result = try RunscProcess.run(["run"])
        #expect(result.status == 64)
        #expect(result.stderr.hasPrefix("runsc: Missing expected argument"))
    }

    @Test func unknownSubcommandsFail() throws {
        let result = try RunscProcess.run(["frobnicate"])
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("runsc: "))
    }

    @Test func onlyThePtracePlatformExists() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("--platform", "kvm", "spec")
        #expect(result.status == 1)
        #expect(result.isCleanError)
        #expect(result.stderr.contains("unknown platform \"kvm\""))
        #expect(!FileManager.default.fileExists(atPath: workspace.path + "/config.json"))
        #expect(try workspace.runsc("--platform", "ptrace", "spec").status == 0)
    }

    @Test func globalOptionsWorkAfterTheSubcommandToo() throws {
        let workspace = try Workspace()
        let result = try RunscProcess.run(["state", "--root", workspace.stateRoot, "--platform", "bogus", "x"])
        #expect(result.stderr.contains("unknown platform"))
    }

    @Test func logFileReceivesDebugMessages() throws {
        let workspace = try Workspace()
        let bundle = try workspace.makeBundle()
        let log = workspace.path + "/runsc.log"
        _ = try workspace.runsc("--log", log, "--debug", "run", "--bundle", bundle, "c1")
        let text = try workspace.read("runsc.log")
        #expect(text.contains("debug runsc"), "\(text)")
        #expect(text.contains("id=c1"))
    }

    /// A clean exit logs no error: the control server's shutdown is not one.
    @Test func aCleanExitIsQuietInTheDebugLog() throws {
        let result = try SandboxRun(["/bin/hello"], debug: true).result
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("debug"), "the debug log goes to stderr: \(result.stderr)")
        #expect(!result.stderr.contains("stops accepting"), "\(result.stderr)")
        #expect(!result.stderr.contains(" error "), "\(result.stderr)")
    }

    @Test func anUnwritableLogFileIsAClearError() throws {
        let workspace = try Workspace()
        let result = try workspace.runsc("--log", workspace.path + "/no/such/dir/log", "spec")
        #expect(result.isCleanError)
        #expect(result.stderr.contains("cannot open log file"))
    }
}

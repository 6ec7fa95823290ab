import FoundationEssentials
import Testing
@testable import OCI

@Suite struct BundleTests {
    @Test func loadsADefaultBundleWithAnAbsoluteRootfs() throws {
        try withTemporaryDirectory { directory in
            let bundle = try makeBundle(in: directory, config: try defaultConfig())
            let loaded = try Bundle.load(directory: bundle)
            #expect(loaded.directory == bundle)
            #expect(loaded.rootfs == bundle + "/rootfs")
            #expect(loaded.configPath == bundle + "/config.json")
            #expect(loaded.spec == Spec.makeDefault())
        }
    }

    @Test func anAbsoluteRootPathIsUsedAsGiven() throws {
        try withTemporaryDirectory { directory in
            try makeDirectory(directory + "/elsewhere")
            let bundle = try makeBundle(in: directory, config: try defaultConfig { $0.root?.path = directory + "/elsewhere/" })
            #expect(try Bundle.load(directory: bundle).rootfs == directory + "/elsewhere")
        }
    }

    @Test func missingBundleDirectoryIsNamed() throws {
        try withTemporaryDirectory { directory in
            let error = try #require(throws: BundleError.self) { try Bundle.load(directory: directory + "/nope") }
            #expect(error.kind == .bundleNotFound)
            #expect(error.file == directory + "/nope")
            #expect(error.description.contains("does not exist"))
        }
    }

    @Test func aFileIsNotABundle() throws {
        try withTemporaryDirectory { directory in
            try writeFile(directory + "/file", "x")
            let error = try #require(throws: BundleError.self) { try Bundle.load(directory: directory + "/file") }
            #expect(error.kind == .bundleNotADirectory)
        }
    }

    @Test func missingConfigSuggestsRunscSpec() throws {
        try withTemporaryDirectory { directory in
            let bundle = try makeBundle(in: directory, config: nil)
            let error = try #require(throws: BundleError.self) { try Bundle.load(directory: bundle) }
            #expect(error.kind == .configMissing)
            #expect(error.file == bundle + "/config.json")
            #expect(error.description.contains("runsc spec"))
        }
    }

    @Test func malformedJSONGivesThePosition() throws {
        try withTemporaryDirectory { directory in
            let bundle = try makeBundle(in: directory, config: "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\"args\": [\"sh\" \"-c\"]}\n}")
            let error = try #require(throws: BundleError.self) { try Bundle.load(directory: bundle) }
            #expect(error.kind == .malformedJSON)
            #expect(error.description.contains("line 3, column 29"), "\(error)")
        }
    }

    @Test func aTopLevelArrayIsNotAConfig() throws {
        try withTemporaryDirectory { directory in
            let bundle = try makeBundle(in: directory, config: "[1, 2]")
            let error = try #require(throws: BundleError.self) { try Bundle.load(directory: bundle) }
            #expect(error.kind == .malformedJSON)
            #expect(error.description.contains("JSON object"))
        }
    }

    /// Each case: a config, the field the error must name, and words its reason must contain.
    static let invalidConfigs: [(config: String, field: String, reason: String)] = [
        (#"{"process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}"#, "ociVersion", "missing"),
        (#"{"ociVersion": "2.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}}"#, "ociVersion", "unsupported"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}}"#, "root", "missing"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {}}"#, "root.path", "missing"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "nope"}}"#, "root.path", "does not exist"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "config.json"}}"#, "root.path", "not a directory"),
        (#"{"ociVersion": "1.0.0", "root": {"path": "rootfs"}}"#, "process", "missing"),
        (#"{"ociVersion": "1.0.0", "process": {"args": [], "cwd": "/"}, "root": {"path": "rootfs"}}"#, "process.args", "empty"),
        (#"{"ociVersion": "1.0.0", "process": {"cwd": "/"}, "root": {"path": "rootfs"}}"#, "process.args", "empty"),
        (#"{"ociVersion": "1.0.0", "process": {"args": [""], "cwd": "/"}, "root": {"path": "rootfs"}}"#, "process.args[0]", "empty"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "work"}, "root": {"path": "rootfs"}}"#, "process.cwd", "not an absolute path"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"]}, "root": {"path": "rootfs"}}"#, "process.cwd", "missing"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/", "env": ["A=1", "B"]}, "root": {"path": "rootfs"}}"#, "process.env[1]", "NAME=VALUE"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]}, "root": {"path": "rootfs"}}"#, "process.rlimits[0].type", "unknown"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 2}]}, "root": {"path": "rootfs"}}"#, "process.rlimits[0]", "exceeds"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2}]}, "root": {"path": "rootfs"}}"#, "process.rlimits[0].hard", "missing"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh", 7], "cwd": "/"}, "root": {"path": "rootfs"}}"#, "process.args[1]", "expected a string, found number"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/", "user": {"uid": -1}}, "root": {"path": "rootfs"}}"#, "process.user.uid", "-1 is out of range"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"uidMappings": [{"containerID": 0, "hostID": 1.5, "size": 1}]}}"#, "linux.uidMappings[0].hostID", "not an integer"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "mounts": [{"destination": "proc"}]}"#, "mounts[0].destination", "not an absolute path"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "mounts": [{"type": "tmpfs"}]}"#, "mounts[0].destination", "missing"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "pid"}, {"type": "vm"}]}}"#, "linux.namespaces[1].type", "unknown namespace type \"vm\""),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}}"#, "linux.namespaces[1].type", "more than once"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "read"}]}}}"#, "linux.seccomp.syscalls[0].names", "expected an array"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]}}}"#, "linux.seccomp.syscalls[0].args[0].index", "past the last syscall argument"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"personality": {"domain": "LINUX32"}}}"#, "linux.personality.domain", "only LINUX"),
        (#"{"ociVersion": "1.0.0", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE", "READ_IMPLIES_EXEC"]}}}"#, "linux.personality.flags[1]", "unknown flag"),
    ]

    @Test(arguments: invalidConfigs)
    func invalidConfigsNameTheFieldAndWhy(_ config: String, _ field: String, _ reason: String) throws {
        try withTemporaryDirectory { directory in
            let bundle = try makeBundle(in: directory, config: config)
            let error = try #require(throws: BundleError.self) { try Bundle.load(directory: bundle) }
            #expect(error.file == bundle + "/config.json")
            #expect(error.field?.hasPrefix(field) == true, "\(error)")
            #expect(error.reason.contains(reason), "\(error)")
            #expect(error.description.hasPrefix(bundle + "/config.json: " + field), "\(error)")
        }
    }
}

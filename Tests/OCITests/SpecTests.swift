import FoundationEssentials
import Testing
@testable import OCI

@Suite struct SpecTests {
    @Test func defaultSpecRoundTripsThroughJSON() throws {
        let spec = Spec.makeDefault(args: ["/bin/echo", "hello"])
        let decoded = try JSONDecoder().decode(Spec.self, from: Data(try spec.encodedJSON()))
        #expect(decoded == spec)
    }

    @Test func defaultSpecIsWhatRuncSpecWrites() {
        let spec = Spec.makeDefault()
        #expect(spec.ociVersion.hasPrefix("1."))
        #expect(spec.root == Spec.Root(path: "rootfs", readonly: true))
        #expect(spec.process?.args == ["sh"])
        #expect(spec.process?.terminal == false)
        #expect(spec.process?.cwd == "/")
        #expect(spec.process?.env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"])
        #expect(spec.linux?.namespaces.map(\.type) == ["pid", "network", "ipc", "uts", "mount"])
        #expect(spec.mounts.map(\.destination) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"])
        #expect(spec.mounts.map(\.type) == ["proc", "tmpfs", "devpts", "tmpfs", "mqueue", "sysfs"])
    }

    @Test func givenArgumentsReplaceTheDefaultShell() {
        #expect(Spec.makeDefault(args: ["/bin/true"]).process?.args == ["/bin/true"])
    }

    @Test func encodedJSONIsPrettyWithSortedKeys() throws {
        let text = String(decoding: try Spec.makeDefault().encodedJSON(), as: UTF8.self)
        let topLevelKeys = text.split(separator: "\n")
            .filter { $0.hasPrefix("  \"") }
            .map { $0.dropFirst(3).prefix { $0 != "\"" } }
        #expect(topLevelKeys == ["hostname", "linux", "mounts", "ociVersion", "process", "root"])
        #expect(text.contains("\"path\" : \"rootfs\""))
        #expect(text.hasSuffix("}\n"))
    }

    @Test func unknownFieldsAreIgnoredAndMissingOnesDefault() throws {
        let json = """
            {"ociVersion": "1.0.2", "somethingNew": {"x": [1, 2]},
             "process": {"args": ["sh"], "cwd": "/", "apparmorProfile": "p", "oomScoreAdj": 10},
             "root": {"path": "rootfs"},
             "linux": {"namespaces": [{"type": "pid"}], "cgroupsPath": "/a", "devices": []}}
            """
        let spec = try JSONDecoder().decode(Spec.self, from: Data(json.utf8))
        #expect(spec.process?.args == ["sh"])
        #expect(spec.process?.terminal == false)
        #expect(spec.process?.user == Spec.User(uid: 0, gid: 0))
        #expect(spec.process?.env == [])
        #expect(spec.root?.readonly == false)
        #expect(spec.mounts == [])
        #expect(spec.hostname == nil)
        #expect(spec.linux?.namespaces == [Spec.Namespace(type: "pid")])
    }

    @Test func everyDocumentedFieldDecodes() throws {
        let json = """
            {
              "ociVersion": "1.1.0",
              "process": {
                "terminal": true,
                "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 18},
                "args": ["/bin/app", "--flag"], "env": ["A=1"], "cwd": "/work",
                "capabilities": {"bounding": ["CAP_KILL"], "ambient": ["CAP_CHOWN"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024}],
                "noNewPrivileges": true
              },
              "root": {"path": "/abs/rootfs", "readonly": true},
              "hostname": "box",
              "mounts": [{"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "ro"]}],
              "annotations": {"org.example": "yes"},
              "linux": {
                "namespaces": [{"type": "network", "path": "/proc/1/ns/net"}],
                "resources": {"memory": {"limit": 536870912}, "cpu": {"shares": 512, "quota": -1, "cpus": "0-1"}, "pids": {"limit": 64}},
                "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                                         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                                         {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]},
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
              }
            }
            """
        let spec = try JSONDecoder().decode(Spec.self, from: Data(json.utf8))
        let process = try #require(spec.process)
        #expect(process.terminal)
        #expect(process.user == Spec.User(uid: 1000, gid: 100, additionalGids: [5, 6], umask: 18))
        #expect(process.capabilities?.ambient == ["CAP_CHOWN"])
        #expect(process.rlimits == [Spec.Rlimit(type: "RLIMIT_NOFILE", hard: 4096, soft: 1024)])
        #expect(spec.mounts.first?.options == ["rbind", "ro"])
        #expect(spec.annotations == ["org.example": "yes"])
        let linux = try #require(spec.linux)
        #expect(linux.namespaces.first?.path == "/proc/1/ns/net")
        #expect(linux.resources?.memory?.limit == 536_870_912)
        #expect(linux.resources?.cpu == Spec.Resources.CPU(shares: 512, quota: -1, cpus: "0-1"))
        #expect(linux.resources?.pids?.limit == 64)
        #expect(linux.seccomp?.syscalls.count == 3)
        #expect(linux.seccomp?.syscalls[1].args?.first == Spec.Seccomp.Arg(index: 0, value: 8, op: "SCMP_CMP_EQ"))
        #expect(linux.seccomp?.syscalls[2].errnoRet == 13)
        #expect(linux.uidMappings == [Spec.IDMapping(containerID: 0, hostID: 100_000, size: 65536)])
        let again = try JSONDecoder().decode(Spec.self, from: Data(try spec.encodedJSON()))
        #expect(again == spec)
    }

    @Test func oddResourceValuesAreDroppedNotFatal() throws {
        let json = """
            {"ociVersion": "1.0.0", "linux": {"resources": {"memory": {"limit": "lots", "swap": 1024}, "cpu": 7, "pids": {"limit": 10}}}}
            """
        let spec = try JSONDecoder().decode(Spec.self, from: Data(json.utf8))
        #expect(spec.linux?.resources?.memory == Spec.Resources.Memory(swap: 1024))
        #expect(spec.linux?.resources?.cpu == nil)
        #expect(spec.linux?.resources?.pids?.limit == 10)
    }
}

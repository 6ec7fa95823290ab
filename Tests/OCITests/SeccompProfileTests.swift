import FoundationEssentials
import Testing
@testable import OCI

/// `linux.seccomp` read into typed rules as runc gives them to libseccomp,
/// and every profile the runtime cannot enforce refused naming the field.
@Suite struct SeccompProfileTests {
    static func parse(_ json: String) throws -> Spec.Seccomp.Parsed {
        try JSONDecoder().decode(Spec.Seccomp.self, from: Data(json.utf8)).parsed()
    }

    @Test func actionsOperatorsAndErrnosAreRead() throws {
        let parsed = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
             "flags": ["SECCOMP_FILTER_FLAG_LOG"],
             "syscalls": [{"names": ["getpid", "gettid"], "action": "SCMP_ACT_ALLOW"},
                          {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                          {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                          {"names": ["kill"], "action": "SCMP_ACT_KILL"},
                          {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
                          {"names": ["tgkill"], "action": "SCMP_ACT_KILL_PROCESS"},
                          {"names": ["getppid"], "action": "SCMP_ACT_TRAP"},
                          {"names": ["uname"], "action": "SCMP_ACT_LOG"},
                          {"names": ["times"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                          {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"},
                                    {"index": 5, "value": 3, "valueTwo": 0, "op": "SCMP_CMP_GE"}]}]}
            """)
        #expect(parsed.defaultAction == .errno(38))
        #expect(parsed.rules.map(\.action) == [.allow, .errno(1), .errno(13), .killThread, .killThread, .killProcess,
                                               .trap, .log, .trace(7), .allow])
        #expect(parsed.rules[0].names == ["getpid", "gettid"])
        #expect(parsed.rules[9].conditions == [
            Spec.Seccomp.Condition(index: 0, op: .maskedEqual, value: 2_114_060_288, valueTwo: 0),
            Spec.Seccomp.Condition(index: 5, op: .greaterOrEqual, value: 3, valueTwo: 0),
        ])
    }

    /// runc: comparisons of one argument in one entry are alternatives (one rule each).
    @Test func comparisonsOfOneArgumentBecomeOneRuleEach() throws {
        let parsed = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO",
             "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
            """)
        #expect(parsed.rules.map(\.conditions) == [[Spec.Seccomp.Condition(index: 0, op: .equal, value: 0, valueTwo: 0)],
                                                   [Spec.Seccomp.Condition(index: 0, op: .equal, value: 8, valueTwo: 0)]])
    }

    /// runc drops an entry whose action is the default one, so a later entry for the syscall decides.
    @Test func rulesWithTheDefaultActionAreDropped() throws {
        let parsed = try Self.parse("""
            {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
             "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                          {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]}
            """)
        #expect(parsed.rules.map(\.action) == [.allow])
    }

    @Test(arguments: Spec.Seccomp.actionNames)
    func everyActionFeaturesListsIsEnforced(_ name: String) throws {
        #expect(throws: Never.self) { try Spec.Seccomp.action(name, errnoRet: nil, field: "defaultAction") }
    }

    @Test(arguments: [
        (#"{"defaultAction": "SCMP_ACT_PERMIT"}"#, "defaultAction", "unknown action \"SCMP_ACT_PERMIT\""),
        (#"{"syscalls": []}"#, "defaultAction", "missing"),
        (#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, "defaultAction", "not supported"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}"#,
         "syscalls[0].action", "SCMP_ACT_NOTIFY (seccomp user notification) is not supported"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#, "listenerPath", "not supported"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}"#,
         "syscalls[1].action", "unknown action \"SCMP_ACT_DENY\""),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
         "syscalls[0].args[0].index", "6 is past the last syscall argument (5)"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 1, "op": "SCMP_CMP_BETWEEN"}]}]}"#,
         "syscalls[0].args[1].op", "unknown comparison \"SCMP_CMP_BETWEEN\""),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#, "syscalls[0].names", "empty"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#, "defaultAction", "errnoRet 70000"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}"#, "architectures[0]", "unknown architecture"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}"#, "flags[0]", "unknown flag"),
    ])
    func badProfilesNameTheFieldAndWhy(_ json: String, _ field: String, _ reason: String) throws {
        let error = try #require(throws: Spec.Seccomp.Invalid.self) { try Self.parse(json) }
        #expect(error.field == field, "\(error)")
        #expect(error.reason.contains(reason), "\(error)")
        #expect(error.description.hasPrefix("linux.seccomp.\(field): "))
    }
}

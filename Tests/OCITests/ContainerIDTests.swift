import Testing
@testable import OCI

@Suite struct ContainerIDTests {
    @Test(arguments: ["a", "my-container", "abc_123", "v1.2+build", "...", ".hidden", "A-Z", String(repeating: "x", count: 1024)])
    func safeNamesAreAccepted(_ id: String) throws {
        #expect(try ContainerID(id).rawValue == id)
    }

    @Test(arguments: [
        ("", "empty"),
        ("/", "'/'"),
        ("a/b", "'/'"),
        ("../etc", "'/'"),
        ("..", "reserved"),
        (".", "reserved"),
        ("with space", "U+20"),
        ("tab\there", "U+9"),
        ("semi;colon", "';'"),
        ("caf\u{E9}", "U+E9"),
        ("nul\u{0}byte", "U+0"),
        (String(repeating: "x", count: 1025), "longer than 1024"),
    ])
    func unsafeNamesAreRefusedWithTheReason(_ id: String, _ reason: String) {
        let error = #expect(throws: ContainerIDError.self) { try ContainerID(id) }
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("invalid container ID") == true)
    }
}

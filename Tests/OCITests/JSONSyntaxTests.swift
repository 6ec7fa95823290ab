import Testing
@testable import OCI

@Suite struct JSONSyntaxTests {
    @Test(arguments: [
        "{}", "[]", "0", "-1.5e+3", "\"\\u00e9\\n\"", "{\"a\": [true, false, null, {\"b\": \"c\"}]}", " \n{ } \n",
    ])
    func wellFormedDocumentsHaveNoError(_ text: String) {
        #expect(JSONSyntaxError.firstError(in: Array(text.utf8)) == nil)
    }

    @Test(arguments: [
        ("{\n  \"a\": [1, 2,]\n}", 2, 14, "expected a value"),
        ("{\"a\" 1}", 1, 6, "expected ':'"),
        ("{\"a\": 1 \"b\": 2}", 1, 9, "expected ',' or '}'"),
        ("{\"a\": tru}", 1, 10, "expected 'true'"),
        ("{\"a\": \"x", 1, 9, "end of file inside a string"),
        ("", 1, 1, "end of file"),
        ("{} {}", 1, 4, "after the top-level value"),
        ("{'a': 1}", 1, 2, "expected a string key"),
        ("[01]", 1, 3, "expected ',' or ']'"),
        ("{\"é\": x}", 1, 7, "expected a value"),
    ])
    func malformedDocumentsReportLineAndColumn(_ text: String, _ line: Int, _ column: Int, _ message: String) throws {
        let error = try #require(JSONSyntaxError.firstError(in: Array(text.utf8)))
        #expect(error.line == line)
        #expect(error.column == column)
        #expect(error.message.contains(message), "\(error.message)")
    }

    @Test func hostileNestingIsRefusedWithoutRecursingForever() throws {
        let text = String(repeating: "[", count: 100_000)
        let error = try #require(JSONSyntaxError.firstError(in: Array(text.utf8)))
        #expect(error.message.contains("nesting"))
    }
}

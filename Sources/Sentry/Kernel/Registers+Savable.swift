import Platform
import State

/// Registers are saved field by field, by name, so an image stays readable if
/// the platform's struct grows.
extension Registers: SavableStruct {
    public static var savedTypeName: String { "sentry.Registers" }

    private static var fields: [(String, WritableKeyPath<Registers, UInt64>)] { [
        ("r15", \.r15), ("r14", \.r14), ("r13", \.r13), ("r12", \.r12), ("rbp", \.rbp), ("rbx", \.rbx),
        ("r11", \.r11), ("r10", \.r10), ("r9", \.r9), ("r8", \.r8), ("rax", \.rax), ("rcx", \.rcx),
        ("rdx", \.rdx), ("rsi", \.rsi), ("rdi", \.rdi), ("origRax", \.origRax), ("rip", \.rip),
        ("cs", \.cs), ("eflags", \.eflags), ("rsp", \.rsp), ("ss", \.ss), ("fsBase", \.fsBase),
        ("gsBase", \.gsBase), ("ds", \.ds), ("es", \.es), ("fs", \.fs), ("gs", \.gs),
    ] }

    public func save(to sink: inout SaveSink) throws {
        for (name, path) in Registers.fields { try sink.save(name, self[keyPath: path]) }
    }

    public init(from source: inout LoadSource) throws {
        self.init()
        for (name, path) in Registers.fields { self[keyPath: path] = try source.load(name) }
    }
}

/// The XSAVE area is saved as bytes; restore checks its size against the host's.
extension FloatingPointState: SavableStruct {
    public static var savedTypeName: String { "sentry.FloatingPointState" }

    public func save(to sink: inout SaveSink) throws {
        try sink.save("xsave", bytes)
    }

    public init(from source: inout LoadSource) throws {
        self.init(bytes: try source.load("xsave"))
    }
}

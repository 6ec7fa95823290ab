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
        try ImageValidation.require(cs == Registers.userCodeSelector, field: "cs",
                                    "0x\(String(cs, radix: 16)) is not the 64-bit user code selector")
        try ImageValidation.require(ss == Registers.userDataSelector, field: "ss",
                                    "0x\(String(ss, radix: 16)) is not the user data selector")
        for (name, selector) in [("ds", ds), ("es", es), ("fs", fs), ("gs", gs)] {
            try ImageValidation.require(selector == 0 || selector == Registers.userDataSelector, field: name,
                                        "0x\(String(selector, radix: 16)) is not a user data selector")
        }
        // arch_prctl(ARCH_SET_FS/GS) takes only user addresses.
        for (name, base) in [("fsBase", fsBase), ("gsBase", gsBase)] {
            try ImageValidation.require(base < MemoryManager.maxAddress, field: name,
                                        "0x\(String(base, radix: 16)) is not a user address")
        }
    }
}

/// The XSAVE area is saved as bytes; restore checks its size against the host's.
extension FloatingPointState: SavableStruct {
    public static var savedTypeName: String { "sentry.FloatingPointState" }
    public static let savedAs: [String: String] = ["bytes": "xsave"]

    public func save(to sink: inout SaveSink) throws {
        try sink.save("xsave", bytes)
    }

    public init(from source: inout LoadSource) throws {
        self.init(bytes: try source.load("xsave"))
    }
}

/// Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `kill`, `9`,
/// and real-time signals as `RTMIN+3` or their numbers. Linux numbering (x86_64 and arm64 agree).
enum Signals {
    static let byName: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
        "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
        "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
        "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
        "POLL": 29, "PWR": 30, "SYS": 31,
    ]
    static let realTimeMinimum: Int32 = 34
    static let maximum: Int32 = 64

    static func parse(_ text: String) throws -> Int32 {
        if let number = Int32(text) {
            guard (1...maximum).contains(number) else {
                throw RunscError("invalid signal \(text): numbers go from 1 to \(maximum)")
            }
            return number
        }
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let number = byName[name] { return number }
        if name == "RTMIN" { return realTimeMinimum }
        if name == "RTMAX" { return maximum }
        if name.hasPrefix("RTMIN+"), let offset = Int32(name.dropFirst("RTMIN+".count)),
            (0...(maximum - realTimeMinimum)).contains(offset)
        {
            return realTimeMinimum + offset
        }
        throw RunscError("unknown signal \"\(text)\" (use a name such as TERM or KILL, or a number)")
    }

    static func name(of number: Int32) -> String {
        if number == 6 { return "SIGABRT" }
        if number == 29 { return "SIGIO" }
        if let name = byName.first(where: { $0.value == number })?.key { return "SIG" + name }
        return number >= realTimeMinimum ? "SIGRTMIN+\(number - realTimeMinimum)" : "signal \(number)"
    }
}

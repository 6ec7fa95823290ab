/// An error the command line reports as `runsc: <message>` and exits with status 1.
struct RunscError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }

    /// For commands whose machinery does not exist yet: the arguments were checked, nothing was done.
    static func notBuilt(_ command: String, _ what: String) -> RunscError {
        RunscError("\(command): not built yet: \(what); nothing was done")
    }
}

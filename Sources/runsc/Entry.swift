import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The process entry point: parses, runs, and turns every error into
/// `runsc: <message>` on stderr with a non-zero exit, never a stack trace.
@main
enum Entry {
    static func main() {
        do {
            var command = try Runsc.parseAsRoot()
            try command.run()
        } catch {
            report(error)
        }
    }

    /// ArgumentParser's own rendering (help and version on stdout with status 0, usage
    /// errors with a usage hint and status 64), with `runsc:` in place of its `Error:`.
    /// Errors thrown by our commands render as their description with status 1.
    static func report(_ error: any Error) -> Never {
        let code = Runsc.exitCode(for: error)
        let text = Runsc.fullMessage(for: error)
        if code == .success {
            print(text)
            exit(0)
        }
        if !text.isEmpty {
            let errorPrefix = "Error: "
            printError(text.hasPrefix(errorPrefix) ? "runsc: " + text.dropFirst(errorPrefix.count) : "runsc: " + text)
        }
        exit(code.rawValue)
    }

    static func printError(_ message: String) {
        var line = message
        if !line.hasSuffix("\n") { line += "\n" }
        _ = line.utf8CString.withUnsafeBufferPointer { buffer in
            write(STDERR_FILENO, buffer.baseAddress, buffer.count - 1)
        }
    }
}

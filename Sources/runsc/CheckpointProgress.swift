import Boot
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `runsc checkpoint` shows on a terminal while the sandbox saves (one
/// request, one answer: the elapsed time is what can be shown meanwhile),
/// then what was written. Off a terminal it prints nothing.
final class CheckpointProgress: @unchecked Sendable {
    private let container: String
    private let started = DispatchTime.now()
    private let timer: DispatchSourceTimer

    init(container: String) {
        self.container = container
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + .seconds(1), repeating: .seconds(1))
        timer.setEventHandler { [self] in show("saving container \"\(container)\": \(elapsedSeconds) s") }
        show("saving container \"\(container)\"...")
        timer.resume()
    }

    /// Stops the display; with a summary, prints it.
    func finish(_ summary: CheckpointSummary?) {
        timer.cancel()
        if let summary {
            show("container \"\(container)\": \(summary)\n")
        } else {
            show("\n")
        }
    }

    private var elapsedSeconds: UInt64 { (DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000_000 }

    private func show(_ line: String) {
        let bytes = Array(("\r\u{1b}[K" + line).utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
